"""The CLI as a user runs it, in this process: stages, errors, the store, outputs and reports."""

import pandas as pd
from conftest import TINY


def test_help_lists_stages_and_choices(cli, capsys):
    assert cli("--help") == 0
    out = capsys.readouterr().out
    for word in ("train", "explain", "evaluate", "run", "report", "moons", "ppcef", "realnvp"):
        assert word in out


def test_hydra_flags_pass_through(cli, capsys):
    assert cli("explain", "data=circles", "--cfg", "job") == 0
    out = capsys.readouterr().out
    assert "name: circles" in out and "stage: explain" in out


def test_train_then_explain_reuses_the_flow(cli, capsys, tmp_path):
    args = ["model=nice", "data=moons", *TINY]
    assert cli("train", *args, "hydra.run.dir=train") == 0
    assert "creating it" in capsys.readouterr().err
    assert cli("explain", "method=ppcef", *args, "hydra.run.dir=explain") == 0
    explained = capsys.readouterr().err
    assert "Loaded flow 'nice'" in explained
    assert "Loaded classifier 'mlp'" in explained
    assert "train flow" not in explained
    frame = pd.read_csv(tmp_path / "explain" / "counterfactuals.csv")
    assert {"x1", "cf_x1", "valid", "target"} <= set(frame.columns)
    assert (frame["factual_class"] == 0).all() and (frame["target"] == 1).all()
    assert cli("evaluate", "method=ppcef", *args, "hydra.run.dir=evaluate") == 0
    assert "Loaded counterfactuals 'ppcef'" in capsys.readouterr().err
    for name in ("metrics.csv", "table.md", "counterfactuals.csv", "config.yaml", "plot.png"):
        assert (tmp_path / "evaluate" / name).stat().st_size > 0
    metrics = pd.read_csv(tmp_path / "evaluate" / "metrics.csv")
    for name in ("coverage", "validity", "l1", "l2", "log_density", "plausibility", "time"):
        assert name in metrics.columns
    assert "validity ↑" in (tmp_path / "evaluate" / "table.md").read_text()
    assert "flowcf:" in (tmp_path / "evaluate" / "config.yaml").read_text()


def test_a_changed_setting_trains_a_new_model(cli, capsys):
    assert cli("train", *TINY, "hydra.run.dir=a") == 0
    capsys.readouterr()
    assert cli("train", *TINY, "model.hidden=8", "hydra.run.dir=b") == 0
    changed = capsys.readouterr().err
    assert "Loaded classifier" in changed
    assert "No flow 'realnvp' for these settings yet" in changed


def test_multirun_then_report(cli, tmp_path):
    sweep = ["-m", "method=ppcef,wachter", "seed=0,1", *TINY, "hydra.sweep.dir=sweep"]
    assert cli("run", *sweep) == 0
    assert len(list((tmp_path / "sweep").rglob("metrics.csv"))) == 4
    assert cli("report", "sweep") == 0
    report = pd.read_csv(tmp_path / "sweep" / "report.csv")
    assert sorted(report["method"]) == ["ppcef", "wachter"]
    assert (report["runs"] == 2).all() and (report["validity_n"] == 2).all()
    assert "validity ↑" in (tmp_path / "sweep" / "report.md").read_text()
    assert (tmp_path / "sweep" / "report.tex").exists()
