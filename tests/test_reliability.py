"""Reliability: the same config and seed give the same results."""

import pandas as pd
from conftest import TINY


def test_the_same_config_and_seed_give_identical_results(flowcf, tmp_path):
    for run in ("a", "b"):  # separate stores: the second run trains everything again
        flowcf("run", *TINY, f"hydra.run.dir={run}", f"paths.store={tmp_path / run / 'store'}")
    metrics = [pd.read_csv(tmp_path / run / "metrics.csv").drop(columns="time") for run in "ab"]
    pd.testing.assert_frame_equal(*metrics)
    counterfactuals = [pd.read_csv(tmp_path / run / "counterfactuals.csv") for run in "ab"]
    pd.testing.assert_frame_equal(*counterfactuals)
    flowcf("run", *TINY, "seed=1", "hydra.run.dir=c")
    assert not pd.read_csv(tmp_path / "c" / "counterfactuals.csv").equals(counterfactuals[0])
