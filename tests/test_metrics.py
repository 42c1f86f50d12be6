"""Metrics aggregate as in the PPCEF evaluation: validity over all, the rest over valid ones."""

import math

import pytest
import torch
from torch import nn

from flowcf.counterfactuals import Counterfactuals
from flowcf.metrics import compute_metrics
from flowcf.setting import Setting


def context() -> Setting:
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
    return Setting(classifier, None, torch.zeros(1, 1), torch.zeros(1).long(), 2, cfs=cfs)


def test_validity_coverage_and_distances():
    names = ["coverage", "validity", "l1", "l2", "linf", "time", "fit_time", "total_time"]
    values = compute_metrics([*names, "time_per_factual"], context())
    assert values["coverage"] == 0.75
    assert values["validity"] == 0.5
    assert values["l1"] == pytest.approx((2.0 + 4.0) / 2)  # over the two valid ones only
    assert values["l2"] == values["linf"] == values["l1"]
    assert values["time"] == 2.0 and values["fit_time"] == 1.0  # the search; the fitting
    assert values["total_time"] == 3.0 and values["time_per_factual"] == 0.75  # both


def test_distance_of_no_valid_counterfactual_is_nan():
    ctx = context()
    ctx.cfs.found = torch.zeros(4, dtype=torch.bool)
    assert math.isnan(compute_metrics(["l2"], ctx)["l2"])


class StandardNormal(nn.Module):
    """log p(x | y) = log N(x; 0, 1) whatever the class: densities known in closed form."""

    def log_prob(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        return torch.distributions.Normal(0.0, 1.0).log_prob(x).sum(dim=1)


def test_validity_weighted_log_density_scores_invalid_ones_at_the_floor():
    # factuals as in context(): valid at 1 and 2, invalid at -0.5, none found for the last
    normal = torch.distributions.Normal(0.0, 1.0)
    ctx = context()
    ctx.flow = StandardNormal()
    ctx.x_train = torch.tensor([[0.0], [3.0], [1.5], [9.0]])
    ctx.y_train = torch.tensor([1, 1, 1, 0])  # target class 1's floor ignores class 0's point
    ctx.options = {"log_density_floor_quantile": 0.0}  # the floor: log N(3), class 1's lowest
    floor = normal.log_prob(torch.tensor(3.0)).item()
    values = compute_metrics(["validity_weighted_log_density", "log_density", "validity"], ctx)
    expected = (normal.log_prob(torch.tensor(1.0)) + normal.log_prob(torch.tensor(2.0))).item()
    assert values["validity_weighted_log_density"] == pytest.approx((expected + 2 * floor) / 4)
    # = floor + validity × the mean density the valid ones gain above it
    gain = values["log_density"] - floor
    assert values["validity_weighted_log_density"] == pytest.approx(
        floor + values["validity"] * gain
    )
    # a valid counterfactual below the floor counts as the floor, no lower than an invalid one
    ctx.cfs.x_cf[1] = 4.0  # still valid; log N(4) < log N(3)
    low = compute_metrics(["validity_weighted_log_density"], ctx)["validity_weighted_log_density"]
    assert low == pytest.approx((normal.log_prob(torch.tensor(1.0)).item() + 3 * floor) / 4)


def test_validity_weighted_log_density_is_the_floor_when_nothing_is_valid():
    ctx = context()
    ctx.flow = StandardNormal()
    ctx.cfs.found = torch.zeros(4, dtype=torch.bool)
    ctx.x_train, ctx.y_train = torch.tensor([[0.0], [2.0], [5.0]]), torch.tensor([1, 1, 0])
    values = compute_metrics(["validity_weighted_log_density", "log_density"], ctx)
    assert math.isnan(values["log_density"])  # Optuna would record a failed trial
    floor = torch.distributions.Normal(0.0, 1.0).log_prob(torch.tensor([0.0, 2.0])).quantile(0.01)
    assert values["validity_weighted_log_density"] == pytest.approx(floor.item())


def test_actionability_counts_only_counterfactuals_that_break_no_constraint():
    import pandas as pd

    from flowcf.data.encoding import TabularEncoder
    from flowcf.data.schema import Schema
    from flowcf.metrics import METRICS

    schema = Schema({"amount": "integer", "age": "integer", "sex": "categorical"}, "y",
                    ["0", "1"], immutable=["sex"], monotone={"age": "increasing"})  # fmt: skip
    # a wide range: amount 700.5 is 6e-6 from 700 once scaled, caught in its own units
    frame = pd.DataFrame({"amount": [100.0, 90100.0], "age": [20.0, 60.0], "sex": ["f", "m"]})
    encoder = TabularEncoder(schema, "minmax").fit(frame)

    def encode(rows: list[tuple]) -> torch.Tensor:
        table = pd.DataFrame(rows, columns=["amount", "age", "sex"])
        return torch.as_tensor(encoder.transform(table, range(len(rows)), "cfs"))

    x = encode([(500, 30, "f")] * 7)
    x_cf = encode([
        (700, 35, "f"),     # clean
        (90101, 35, "f"),   # amount above the training range
        (700.5, 35, "f"),   # amount not whole
        (700, 35, "m"),     # immutable sex changed
        (700, 25, "f"),     # age decreased
        (700, 35, "f"),     # one-hot broken below
        (100, 60, "f"),     # clean, at both bounds
    ])  # fmt: skip
    x_cf[5, 2:] = torch.tensor([0.6, 0.4])
    always_one = nn.Linear(x.shape[1], 2)
    with torch.no_grad():
        always_one.weight.zero_()
        always_one.bias.copy_(torch.tensor([0.0, 1.0]))
    cfs = Counterfactuals(x, x_cf, torch.zeros(7).long(), torch.ones(7).long(),
                          torch.ones(7, dtype=torch.bool), torch.ones(7).long(), 1.0)  # fmt: skip
    ctx = Setting(always_one, None, x, torch.zeros(7).long(), 2, cfs=cfs,
                  constraints=encoder.constraints())  # fmt: skip
    per_factual = METRICS.get("actionability").compute(ctx)
    assert per_factual.tolist() == [True, False, False, False, False, False, True]
    assert compute_metrics(["actionability"], ctx)["actionability"] == pytest.approx(2 / 7)
