"""Tests for the 2D toy data sets and the split-and-scale helper."""

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from flowcf.data import DATASETS, Dataset
from flowcf.data.base import split_and_scale
from flowcf.data.toys import TOYS
from flowcf.errors import UserError

CONF = Path(__file__).parents[1] / "conf" / "data"
NUM_CLASSES = {
    "moons": 2,
    "circles": 2,
    "blobs": 3,
    "pinwheel": 5,
    "8gaussians": 8,
    "2spirals": 2,
    "checkerboard": 2,
}


def config(name: str, **overrides) -> dict:
    with open(CONF / f"{name}.yaml") as f:
        return yaml.safe_load(f) | overrides


def load(name: str, seed: int = 0, **overrides) -> Dataset:
    return DATASETS.build(name, config(name, **overrides), seed)


def splits(ds: Dataset) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [(ds.x_train, ds.y_train), (ds.x_val, ds.y_val), (ds.x_test, ds.y_test)]


def test_every_toy_is_registered_and_configured():
    assert set(TOYS) == set(NUM_CLASSES)
    for name in TOYS:
        assert name in DATASETS
        cfg = config(name)
        assert cfg["name"] == name and cfg["kind"] == "toy"


@pytest.mark.parametrize("name", sorted(TOYS))
def test_shapes_classes_and_stratification(name):
    cfg = config(name)
    ds = load(name)
    num_classes = NUM_CLASSES[name]

    assert ds.name == name and ds.dim == 2 and len(ds.feature_names) == 2
    assert ds.num_classes == num_classes
    assert sum(len(y) for _, y in splits(ds)) == cfg["n_samples"]
    assert len(ds.x_val) == pytest.approx(cfg["val"] * cfg["n_samples"], abs=1)
    assert len(ds.x_test) == pytest.approx(cfg["test"] * cfg["n_samples"], abs=1)

    proportions = []
    for x, y in splits(ds):
        assert x.dtype == torch.float32 and x.shape == (len(y), 2)
        assert y.dtype == torch.int64 and y.shape == (len(x),)
        assert torch.isfinite(x).all()
        assert torch.equal(y.unique(), torch.arange(num_classes))
        proportions.append(torch.bincount(y, minlength=num_classes) / len(y))
    for p in proportions[1:]:
        assert torch.allclose(p, proportions[0], atol=0.02)


@pytest.mark.parametrize("name", sorted(TOYS))
def test_standard_scaling_and_to_raw(name):
    cfg = config(name)
    ds = load(name, scaling="standard")

    assert torch.allclose(ds.x_train.mean(dim=0), torch.zeros(2), atol=1e-5)
    assert torch.allclose(ds.x_train.std(dim=0, unbiased=False), torch.ones(2), atol=1e-5)

    # to_raw maps the splits back onto exactly the generated points, in some order.
    raw, _ = TOYS[name](cfg["n_samples"], cfg["noise"], 0)
    recovered = torch.cat([ds.to_raw(x) for x, _ in splits(ds)]).double()
    distances = torch.cdist(recovered, torch.as_tensor(raw, dtype=torch.float64))
    assert distances.min(dim=1).values.max() < 1e-5
    assert len(distances.argmin(dim=1).unique()) == len(raw)


@pytest.mark.parametrize("name", sorted(TOYS))
def test_minmax_scaling(name):
    ds = load(name, scaling="minmax")

    assert torch.allclose(ds.x_train.min(dim=0).values, torch.zeros(2), atol=1e-6)
    assert torch.allclose(ds.x_train.max(dim=0).values, torch.ones(2), atol=1e-6)


@pytest.mark.parametrize("name", sorted(TOYS))
def test_seeding(name):
    a, b, c = load(name, seed=0), load(name, seed=0), load(name, seed=1)

    for (xa, ya), (xb, yb) in zip(splits(a), splits(b), strict=True):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    assert not torch.equal(a.x_train, c.x_train)


def test_moons_match_the_ppcef_protocol():
    from sklearn.datasets import make_moons

    x, y = TOYS["moons"](1024, 0.1, 42)
    x_ref, y_ref = make_moons(1024, noise=0.1, random_state=42)
    assert np.array_equal(x, x_ref) and np.array_equal(y, y_ref)


def test_generators_accept_a_numpy_generator():
    for generate in TOYS.values():
        x_a, y_a = generate(50, 0.1, np.random.default_rng(3))
        x_b, y_b = generate(50, 0.1, np.random.default_rng(3))
        assert x_a.shape == (50, 2) and y_a.shape == (50,)
        assert np.array_equal(x_a, x_b) and np.array_equal(y_a, y_b)


def test_split_and_scale_keeps_rows_together():
    # The features encode the row index, so to_raw must give back rows that match their labels.
    index = np.arange(300)
    x = np.stack([index, 2.0 * index + 5], axis=-1)
    y = index % 3
    ds = split_and_scale(
        x, y, name="rows", feature_names=["i", "j"], seed=0, val=0.2, test=0.1, scaling="standard"
    )

    for xs, ys in splits(ds):
        raw = ds.to_raw(xs).double()
        assert torch.allclose(raw[:, 1], 2 * raw[:, 0] + 5, atol=1e-3)
        assert torch.equal(raw[:, 0].round().long() % 3, ys)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"scaling": "robust"}, "standard, minmax"),
        ({"n_samples": 4}, "cannot be split"),
    ],
)
def test_bad_config_raises_user_error(kwargs, match):
    with pytest.raises(UserError, match=match):
        load("moons", **kwargs)


def test_labels_must_cover_every_class():
    x = np.random.default_rng(0).normal(size=(40, 2))
    with pytest.raises(UserError, match="every class"):
        split_and_scale(
            x,
            np.arange(40) % 2 * 2,
            name="gap",
            feature_names=["a", "b"],
            seed=0,
            val=0.2,
            test=0.2,
            scaling="standard",
        )
