"""Reliability: the same config and seed give the same results; processes share the store."""

import os
import subprocess

import pandas as pd
from conftest import FLOWCF, TINY


def test_the_same_config_and_seed_give_identical_results(flowcf, tmp_path):
    for run in ("a", "b"):  # separate stores: the second run trains everything again
        flowcf("run", *TINY, f"hydra.run.dir={run}", f"paths.store={tmp_path / run / 'store'}")
    metrics = [pd.read_csv(tmp_path / run / "metrics.csv").drop(columns="time") for run in "ab"]
    pd.testing.assert_frame_equal(*metrics)
    counterfactuals = [pd.read_csv(tmp_path / run / "counterfactuals.csv") for run in "ab"]
    pd.testing.assert_frame_equal(*counterfactuals)
    flowcf("run", *TINY, "seed=1", "hydra.run.dir=c")
    assert not pd.read_csv(tmp_path / "c" / "counterfactuals.csv").equals(counterfactuals[0])


def test_two_processes_training_one_artifact_build_it_once(tmp_path):
    env = {**os.environ, "FLOWCF_STORE": str(tmp_path / "store")}
    args = [FLOWCF, "train", *TINY, "model.train.epochs=30"]
    processes = [
        subprocess.Popen(
            [*args, f"hydra.run.dir={run}"],
            cwd=tmp_path,
            env=env,
            text=True,
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
        )
        for run in ("a", "b")
    ]
    logs = [process.communicate(timeout=600)[1] for process in processes]
    assert [process.returncode for process in processes] == [0, 0], logs
    for kind in ("classifier", "flow"):
        built = sum(f"No {kind} '" in log for log in logs)
        loaded = sum(f"Loaded {kind}" in log for log in logs)
        assert (built, loaded) == (1, 1), (kind, logs)
        artifacts = [p for p in (tmp_path / "store" / kind).iterdir() if p.is_dir()]
        assert len(artifacts) == 1 and (artifacts[0] / "model.pt").is_file()
