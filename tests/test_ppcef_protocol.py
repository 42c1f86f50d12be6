"""The PPCEF authors' protocol: their data preprocessing, their metric conventions (pooled τ,
LOF and isolation-forest forms, validity over returned counterfactuals) and DiCoFlex's select."""

import numpy as np
import pandas as pd
import pytest
import torch
from hydra import compose, initialize_config_dir
from sklearn.datasets import make_moons
from torch import nn

from flowcf.cli import CONFIG_DIR
from flowcf.config import plain
from flowcf.counterfactuals import Counterfactuals
from flowcf.data import DATASETS
from flowcf.density import class_quantiles
from flowcf.errors import UserError
from flowcf.losses import LOSSES, Candidate
from flowcf.methods import METHODS
from flowcf.metrics import compute_metrics
from flowcf.setting import Setting


def data_config(name: str, *overrides: str) -> dict:
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        return plain(compose("config", overrides=[f"data=ppcef/{name}", *overrides]).data)


def folds(name: str, *overrides: str):
    cfg = data_config(name, *overrides)
    return [DATASETS.build(cfg["name"], {**cfg, "fold": i}, 4) for i in range(cfg["folds"])]


@pytest.mark.parametrize("name", ["moons", "law", "blobs", "wine"])
def test_minmax_is_fit_on_each_training_fold(name):
    datasets = folds(name)
    for data in datasets:
        assert torch.equal(data.x_train.amin(0), torch.zeros(data.dim))
        assert torch.equal(data.x_train.amax(0), torch.ones(data.dim))
    assert len({tuple(d.shift.tolist()) for d in datasets}) > 1  # a scaler per fold
    raw = torch.cat([d.to_raw(torch.cat([d.x_train, d.x_val, d.x_test])) for d in datasets[:1]])
    tests = torch.cat([d.to_raw(d.x_test) for d in datasets])
    assert len(tests) == len(raw)  # the 5 test folds cover every row once
    assert torch.allclose(tests.sort(0).values, raw.sort(0).values, atol=1e-4)


def test_law_downsamples_class_1_to_class_0s_count():
    frame = pd.read_csv(data_config("law")["path"]).dropna(subset=["lsat", "gpa", "zfygpa"])
    failed = int((frame["pass_bar"] == 0).sum())
    data = folds("law")[0]
    labels = torch.cat([data.y_train, data.y_val, data.y_test])
    assert labels.bincount().tolist() == [failed, failed]
    assert data.feature_names == ["lsat", "gpa", "zfygpa"]


def test_blobs_read_the_first_line_as_a_header_as_the_authors_do():
    data = folds("blobs")[0]
    assert len(data.x_train) + len(data.x_val) + len(data.x_test) == 1499
    assert data.num_classes == 3


def test_moons_are_the_authors_make_moons():
    data = folds("moons")[0]
    x, _ = make_moons(1024, noise=0.1, random_state=42)
    ours = data.to_raw(torch.cat([data.x_train, data.x_val, data.x_test])).double()
    assert torch.allclose(ours.sort(0).values, torch.as_tensor(x).sort(0).values, atol=1e-5)


def test_heloc_reads_a_users_copy_and_names_a_missing_one(tmp_path):
    cfg = data_config("heloc", f"data.path={tmp_path}/heloc.csv")
    with pytest.raises(UserError, match=f"{tmp_path}/heloc.csv does not exist.*data.path"):
        DATASETS.build("heloc", cfg, 4)
    features = list(cfg["schema"]["features"])
    rows = np.random.default_rng(0).integers(0, 100, size=(50, len(features)))
    frame = pd.DataFrame(rows, columns=features)
    frame.insert(0, "RiskPerformance", ["Bad", "Good"] * 25)  # their file's first column
    frame.to_csv(tmp_path / "heloc.csv", index=False)
    data = DATASETS.build("heloc", cfg, 4)
    assert data.dim == len(features) == 23 and data.num_classes == 2


class ClassShifted(nn.Module):
    """log p(x | y) = −x² + 10 y: class 1 is 10 nats denser at every point."""

    def log_prob(self, x, context):
        return -x.square().sum(dim=1) + 10 * context[:, 1]


def test_pooled_and_per_class_thresholds():
    x = torch.tensor([[0.0], [1.0], [2.0], [0.0], [1.0], [2.0]])
    y = torch.tensor([0, 0, 0, 1, 1, 1])
    per_class = class_quantiles(ClassShifted(), x, y, 2, 0.5)
    pooled = class_quantiles(ClassShifted(), x, y, 2, 0.5, "pooled")
    assert per_class.tolist() == [-1.0, 9.0]  # each class's own median
    assert pooled.tolist() == [3.0, 3.0]  # the median of −4, −1, 0, 6, 9, 10 for both
    models = Setting(nn.Linear(1, 2), ClassShifted(), x, y, 2)
    candidate = Candidate(x[:2], x[:2], x[:2], x[:2], torch.tensor([0, 1]))  # log p: 0, 9
    pooled_hinge = LOSSES.build("nll_hinge", models, threshold="pooled")
    assert pooled_hinge(candidate).tolist() == [3.0, 0.0]
    assert LOSSES.build("nll_hinge", models)(candidate).tolist() == [0.0, 0.0]


def evaluation(**options) -> Setting:
    """Four factuals at −1 to class 1 (x > 0): valid at 1 and 2, invalid at −0.5, one missing;
    training points around 0 and 1."""
    classifier = nn.Linear(1, 2)
    with torch.no_grad():
        classifier.weight.copy_(torch.tensor([[-1.0], [1.0]]))
        classifier.bias.zero_()
    cfs = Counterfactuals(
        x=torch.full((4, 1), -1.0),
        x_cf=torch.tensor([[1.0], [2.0], [-0.5], [float("nan")]]),
        y=torch.zeros(4).long(),
        y_target=torch.ones(4).long(),
        found=torch.tensor([True, True, True, False]),
        steps=torch.ones(4).long(),
        seconds=1.0,
    )
    x_train = torch.linspace(-1, 2, 200)[:, None]
    return Setting(classifier, None, x_train, (x_train[:, 0] > 0).long(), 2, cfs=cfs,
                   options=options)  # fmt: skip


def test_validity_over_returned_counterfactuals():
    assert compute_metrics(["validity"], evaluation())["validity"] == 0.5  # of all four
    returned = compute_metrics(["validity"], evaluation(over={"validity": "returned"}))
    assert returned["validity"] == pytest.approx(2 / 3)  # of the three returned


def test_validity_changed_counts_any_other_class_than_the_factuals():
    context = evaluation()
    context.cfs.y_target = torch.tensor([1, 1, 1, 2])  # three classes: to 1, 1, 1 and 2
    context.num_classes = 3
    assert compute_metrics(["validity_changed"], context)["validity_changed"] == pytest.approx(
        2 / 3  # 1 and 2 left class 0, −0.5 did not; the missing one is not counted
    )


def test_lof_factor_is_the_negated_score_over_returned_ones():
    names = ["lof", "lof_factor", "isolation_forest_decision"]
    valid = compute_metrics(names, evaluation(over={"lof_factor": "valid"}))
    assert valid["lof_factor"] == pytest.approx(-valid["lof"])
    values = compute_metrics(names, evaluation())
    assert values["lof_factor"] != pytest.approx(valid["lof_factor"])  # −0.5 counts too
    inliers = compute_metrics(["lof_factor"], evaluation(over={"lof_factor": "valid"}))
    assert 0.9 < inliers["lof_factor"] < 1.5  # ≈ 1 inside the training data
    assert -0.5 < values["isolation_forest_decision"] < 0.5


def test_dicoflex_selects_the_closest_or_the_most_confident():
    torch.manual_seed(0)
    x_train, _ = make_moons(200, noise=0.1, random_state=0)
    x_train = torch.as_tensor(x_train, dtype=torch.float32)
    classifier = nn.Linear(2, 2)
    with torch.no_grad():  # class 1 iff x₂ < 0.25
        classifier.weight.copy_(torch.tensor([[0.0, 4.0], [0.0, -4.0]]))
        classifier.bias.copy_(torch.tensor([-1.0, 1.0]))
    y_train = classifier(x_train).argmax(dim=1)
    models = Setting(classifier, None, x_train, y_train, 2)
    options = dict(flow={"name": "realnvp", "layers": 2, "hidden": 16, "depth": 1},
                   train={"epochs": 2, "batch_size": 256, "lr": 1e-3}, neighbours=4,
                   num_samples=50, progress=False)  # fmt: skip
    x = x_train[y_train == 0][:8]
    target = torch.ones(8, dtype=torch.long)
    chosen = {}
    for select in ("closest", "confident"):
        torch.manual_seed(1)
        method = METHODS.build("dicoflex", models, select=select, **options)
        torch.manual_seed(2)
        chosen[select] = method.explain(x, torch.zeros_like(target), target)
    closest, confident = chosen["closest"], chosen["confident"]
    found = closest.found & confident.found
    assert found.any()
    same = torch.nan_to_num(closest.alternatives).sort(1).values
    assert torch.equal(same, torch.nan_to_num(confident.alternatives).sort(1).values)
    distance = (closest.alternatives - x[:, None]).abs().sum(dim=2)
    assert torch.allclose(distance[:, 0][found], distance.nan_to_num(torch.inf).amin(1)[found])
    proba = classifier(confident.alternatives.nan_to_num()).softmax(dim=2)[..., 1]
    proba = proba.masked_fill(confident.alternatives.isnan().any(dim=2), -1)
    assert torch.equal(proba[:, 0][found], proba.amax(dim=1)[found])
