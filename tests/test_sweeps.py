"""Sweeps as a user runs them: parallel multiruns, the aggregated report, failures, re-runs."""

import pandas as pd
import yaml
from conftest import TINY

SMALL = [*TINY, "threads=1", "factuals.limit=20"]


def test_joblib_sweep_writes_the_aggregated_table_and_skips_finished_runs(flowcf, tmp_path):
    args = ["method=ppcef,wachter", "seed=0,1", *SMALL, "hydra.sweep.dir=sweep"]
    flowcf("run", "-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", *args)
    report = pd.read_csv(tmp_path / "sweep" / "report.csv")
    assert sorted(report["method"]) == ["ppcef", "wachter"]
    assert (report["runs"] == 2).all()
    assert report["validity ↑"].str.contains("±").all()
    assert (tmp_path / "sweep" / "report.png").exists()
    assert "\\textbf{" in (tmp_path / "sweep" / "report.tex").read_text()
    again = flowcf("run", "-m", *args)
    assert again.stderr.count("Skipping") == 4


def test_a_failed_run_does_not_end_the_sweep_and_the_report_counts_it(flowcf, tmp_path):
    # epochs=0 is a user error in one of the two runs
    small = [arg for arg in SMALL if not arg.startswith("classifier.train.epochs")]
    flowcf("run", "-m", "method=wachter", "classifier.train.epochs=20,0", *small,
           "hydra.sweep.dir=sweep")  # fmt: skip
    assert len(list((tmp_path / "sweep").rglob("failed.txt"))) == 1
    process = flowcf("report", "sweep")
    assert "Report of 1 runs, 1 failed" in process.stderr
    assert pd.read_csv(tmp_path / "sweep" / "report.csv")["runs"].tolist() == [1]


def test_an_optuna_search_of_four_trials_names_its_best_parameters(flowcf, tmp_path):
    flowcf("run", "-m", "hparams_search=ppcef_moons", "hydra.sweeper.n_trials=4", *SMALL,
           "hydra.sweep.dir=sweep")  # fmt: skip
    best = yaml.safe_load((tmp_path / "sweep" / "optimization_results.yaml").read_text())
    assert set(best["best_params"]) == {
        "method.losses.decision.weight",
        "method.losses.plausibility.weight",
    }
    assert 0 <= best["best_value"] <= 1


def test_submitit_local_runs_one_job_end_to_end(flowcf, tmp_path):
    flowcf("run", "-m", "hydra/launcher=submitit_local", "hydra.launcher.timeout_min=5",
           *SMALL, "hydra.sweep.dir=sweep")  # fmt: skip
    assert (tmp_path / "sweep" / "0_moons_ppcef_seed0" / "metrics.csv").exists()
    assert pd.read_csv(tmp_path / "sweep" / "report.csv")["runs"].tolist() == [1]
