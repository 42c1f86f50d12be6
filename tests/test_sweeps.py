"""Sweeps as a user runs them: parallel multiruns, the aggregated report, failures, re-runs;
in this process except with the launchers that start processes (joblib, submitit)."""

import math

import pandas as pd
import pytest
import yaml
from conftest import TINY

from flowcf.naming import sweep_name

SMALL = [*TINY, "threads=1", "factuals.limit=20"]


@pytest.mark.parametrize(
    ("experiment", "data", "methods", "overrides", "name"),
    [
        (None, "moons", None, ["method=ppcef,wachter", "seed=range(2)", "method.lr=interval(0,1)"],
         "run_moons_ppcef+wachter"),
        (None, "moons", None, ["data=moons,circles", "method=wachter"], "run_moons+circles_ppcef"),
        ("place_mnist", "mnist", {"place": {}, "revise": {}}, ["seed=0,1"],
         "run_place_mnist_mnist_place+revise"),
        (None, "moons", None, ["experiment=place_mnist,credit_table"],
         "run_place_mnist+credit_table"),
    ],
)  # fmt: skip
def test_sweep_names_say_experiment_data_and_the_swept_methods(
    experiment, data, methods, overrides, name
):
    # the sweep's config holds the defaults for swept groups (moons, ppcef): the name reads the
    # swept values from the overrides
    assert sweep_name("run", experiment, data, methods, "ppcef", overrides) == name


def test_an_experiments_sweep_dir_and_subdirs_name_it_and_its_methods(compose):
    cfg = compose("experiment=place_mnist", "seed=3", hydra=True)
    cfg.hydra.job.num = 7
    assert cfg.hydra.sweep.dir.startswith("outputs/multirun/run_place_mnist_mnist_place+revise+")
    assert cfg.hydra.sweep.subdir == "7_mnist_place+revise+clarity_seed3"


def test_joblib_sweep_writes_the_aggregated_table_and_skips_finished_runs(
    flowcf, cli, tmp_path, capsys
):
    args = ["method=ppcef,wachter", "seed=0,1", *SMALL]
    flowcf("run", "-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", *args)
    # one readable sweep dir, named once for the whole sweep; a subdir per job
    (sweep,) = (tmp_path / "outputs" / "multirun" / "run_moons_ppcef+wachter").iterdir()
    assert sorted(p.name for p in sweep.iterdir() if p.is_dir()) == [
        "0_moons_ppcef_seed0", "1_moons_ppcef_seed1", "2_moons_wachter_seed0",
        "3_moons_wachter_seed1",
    ]  # fmt: skip
    report = pd.read_csv(sweep / "report.csv")
    assert sorted(report["method"]) == ["ppcef", "wachter"]
    assert (report["runs"] == 2).all() and (report["validity_n"] == 2).all()
    assert report["validity_std"].notna().all()  # numbers, not "0.9 ± 0.1"
    assert (sweep / "report.png").exists()
    assert "\\textbf{" in (sweep / "report.tex").read_text()
    assert cli("run", "-m", *args, f"hydra.sweep.dir={sweep}") == 0
    assert capsys.readouterr().err.count("Skipping") == 4
    assert cli("report", str(sweep)) == 0
    assert "Report of 4 runs, 0 failed" in capsys.readouterr().err


def test_a_failed_run_does_not_end_the_sweep_and_the_report_counts_it(cli, tmp_path, capsys):
    # target 7 of two classes is a user error of one of the two runs, found once the data is
    # read (a value the config alone rules out fails the whole sweep before it starts)
    assert cli("run", "-m", "method=wachter", "method.target=next,7", *SMALL,
               "hydra.sweep.dir=sweep") == 0  # fmt: skip
    assert len(list((tmp_path / "sweep").rglob("failed.txt"))) == 1
    capsys.readouterr()
    assert cli("report", "sweep") == 0
    assert "Report of 1 runs, 1 failed" in capsys.readouterr().err
    assert pd.read_csv(tmp_path / "sweep" / "report.csv")["runs"].tolist() == [1]


def test_submitit_local_runs_one_job_end_to_end(flowcf, tmp_path):
    flowcf("run", "-m", "hydra/launcher=submitit_local", "hydra.launcher.timeout_min=5",
           *SMALL, "hydra.sweep.dir=sweep")  # fmt: skip
    assert (tmp_path / "sweep" / "0_moons_ppcef_seed0" / "metrics.csv").exists()
    assert pd.read_csv(tmp_path / "sweep" / "report.csv")["runs"].tolist() == [1]


def test_an_optuna_search_of_four_trials_goes_on_past_failed_ones_and_names_its_best(
    cli, tmp_path, capsys
):
    # target 7 of two classes is a user error: those trials fail (no value for Optuna), the
    # others return the validity-weighted log density, scored though metrics.names omits it
    assert cli("run", "-m", "hparams_search=ppcef_moons", "hydra.sweeper.n_trials=4",
               "method.target=choice(next,7)", "metrics.names=[validity]",
               "optimized_metric=validity_weighted_log_density", *SMALL,
               "hydra.sweep.dir=sweep") == 0  # fmt: skip
    failed = list((tmp_path / "sweep").rglob("failed.txt"))
    assert 1 <= len(failed) < 4
    assert "".join(capsys.readouterr()).count("Failed experiment") == len(failed)
    best = yaml.safe_load((tmp_path / "sweep" / "optimization_results.yaml").read_text())
    assert best["best_params"]["method.target"] == "next"
    assert set(best["best_params"]) == {
        "method.target",
        "method.losses.decision.weight",
        "method.losses.plausibility.weight",
    }
    assert math.isfinite(best["best_value"])
    report = pd.read_csv(tmp_path / "sweep" / "report.csv")
    assert report["runs"].sum() == 4 - len(failed)
    assert "validity_weighted_log_density_mean" in report


def test_a_sweep_rerun_skips_a_finished_job_only_if_its_config_is_unchanged(cli, tmp_path, capsys):
    job = ["run", "-m", *SMALL, "method.max_steps=20", "hydra.sweep.dir=sweep"]
    assert cli(*job) == 0
    capsys.readouterr()
    assert cli(*job, "progress=true") == 0  # how it shows progress changes no result
    assert "Skipping" in capsys.readouterr().err
    assert cli(*job, "method.max_steps=30") == 0
    err = capsys.readouterr().err
    assert "Skipping" not in err
    assert "its config changed: method.max_steps (20 → 30)" in err
    assert "No counterfactuals 'ppcef'" in err  # run, not read back
    saved = yaml.safe_load((tmp_path / "sweep/0_moons_ppcef_seed0/config.yaml").read_text())
    assert saved["method"]["max_steps"] == 30
