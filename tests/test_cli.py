"""The CLI as a user runs it: stages, errors, the store, outputs and reports."""

import pandas as pd
from conftest import TINY


def test_help_lists_stages_and_choices(flowcf):
    out = flowcf("--help").stdout
    for word in ("train", "explain", "evaluate", "run", "report", "moons", "ppcef", "realnvp"):
        assert word in out


def test_hydra_flags_pass_through(flowcf):
    out = flowcf("explain", "data=circles", "--cfg", "job").stdout
    assert "name: circles" in out and "stage: explain" in out


def test_train_then_explain_reuses_the_flow(flowcf, tmp_path):
    args = ["model=nice", "data=moons", *TINY]
    trained = flowcf("train", *args, "hydra.run.dir=train")
    assert "creating it" in trained.stderr
    explained = flowcf("explain", "method=ppcef", *args, "hydra.run.dir=explain")
    assert "Loaded flow 'nice'" in explained.stderr
    assert "Loaded classifier 'mlp'" in explained.stderr
    assert "train flow" not in explained.stderr
    frame = pd.read_csv(tmp_path / "explain" / "counterfactuals.csv")
    assert {"x1", "cf_x1", "valid", "target"} <= set(frame.columns)
    assert (frame["factual_class"] == 0).all() and (frame["target"] == 1).all()
    evaluated = flowcf("evaluate", "method=ppcef", *args, "hydra.run.dir=evaluate")
    assert "Loaded counterfactuals 'ppcef'" in evaluated.stderr
    for name in ("metrics.csv", "table.md", "counterfactuals.csv", "config.yaml", "plot.png"):
        assert (tmp_path / "evaluate" / name).stat().st_size > 0
    metrics = pd.read_csv(tmp_path / "evaluate" / "metrics.csv")
    for name in ("coverage", "validity", "l1", "l2", "log_density", "plausibility", "time"):
        assert name in metrics.columns
    assert "validity ↑" in (tmp_path / "evaluate" / "table.md").read_text()
    assert "flowcf:" in (tmp_path / "evaluate" / "config.yaml").read_text()


def test_a_changed_setting_trains_a_new_model(flowcf):
    flowcf("train", *TINY, "hydra.run.dir=a")
    changed = flowcf("train", *TINY, "model.hidden=8", "hydra.run.dir=b")
    assert "Loaded classifier" in changed.stderr
    assert "No flow 'realnvp' for these settings yet" in changed.stderr


def test_multirun_then_report(flowcf, tmp_path):
    flowcf("run", "-m", "method=ppcef,wachter", "seed=0,1", *TINY, "hydra.sweep.dir=sweep")
    assert len(list((tmp_path / "sweep").rglob("metrics.csv"))) == 4
    flowcf("report", "sweep")
    report = pd.read_csv(tmp_path / "sweep" / "report.csv")
    assert sorted(report["method"]) == ["ppcef", "wachter"]
    assert (report["runs"] == 2).all() and (report["validity_n"] == 2).all()
    assert "validity ↑" in (tmp_path / "sweep" / "report.md").read_text()
    assert (tmp_path / "sweep" / "report.tex").exists()
