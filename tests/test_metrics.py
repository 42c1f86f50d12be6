"""Metrics aggregate as in the PPCEF evaluation: validity over all, the rest over valid ones."""

import math

import pytest
import torch
from torch import nn

from flowcf.methods import Counterfactuals
from flowcf.metrics import EvaluationContext, compute_metrics


def context() -> EvaluationContext:
    classifier = nn.Linear(1, 2)  # class 1 iff x > 0
    with torch.no_grad():
        classifier.weight.copy_(torch.tensor([[-1.0], [1.0]]))
        classifier.bias.zero_()
    cfs = Counterfactuals(
        x=torch.tensor([[-1.0], [-2.0], [-1.0], [-1.0]]),
        x_cf=torch.tensor([[1.0], [2.0], [-0.5], [float("nan")]]),
        y=torch.zeros(4).long(),
        y_target=torch.ones(4).long(),
        found=torch.tensor([True, True, True, False]),
        steps=torch.ones(4).long(),
        seconds=2.0,
        fit_seconds=1.0,
    )
    return EvaluationContext(cfs, classifier, None, torch.zeros(1, 1), torch.zeros(1).long(), 2)


def test_validity_coverage_and_distances():
    values = compute_metrics(
        ["coverage", "validity", "l1", "l2", "linf", "time", "time_per_factual"], context()
    )
    assert values["coverage"] == 0.75
    assert values["validity"] == 0.5
    assert values["l1"] == pytest.approx((2.0 + 4.0) / 2)  # over the two valid ones only
    assert values["l2"] == values["linf"] == values["l1"]
    assert values["time"] == 3.0 and values["time_per_factual"] == 0.75  # search + fitting


def test_distance_of_no_valid_counterfactual_is_nan():
    ctx = context()
    ctx.cfs.found = torch.zeros(4, dtype=torch.bool)
    assert math.isnan(compute_metrics(["l2"], ctx)["l2"])
