"""Sweeps as a user runs them: parallel multiruns, the aggregated report, failures, re-runs."""

import pandas as pd
from conftest import TINY

SMALL = [*TINY, "threads=1", "factuals.limit=20"]


def test_joblib_sweep_writes_the_aggregated_table_and_skips_finished_runs(flowcf, tmp_path):
    args = ["method=ppcef,wachter", "seed=0,1", *SMALL, "hydra.sweep.dir=sweep"]
    flowcf("run", "-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", *args)
    report = pd.read_csv(tmp_path / "sweep" / "report.csv")
    assert sorted(report["method"]) == ["ppcef", "wachter"]
    assert (report["runs"] == 2).all()
    assert report["validity ↑"].str.contains("±").all()
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
