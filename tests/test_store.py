"""The artifact store: one build per config, reuse after, clear errors on corrupt files."""

import pytest
import torch

from flowcf.errors import UserError
from flowcf.store import Store


def test_builds_once_then_loads(tmp_path):
    store, calls = Store(tmp_path), []

    def create():
        calls.append(1)
        return {"w": torch.arange(3.0)}, {"loss": 0.5}

    spec = {"data": {"name": "moons"}, "seed": 0}
    first = store.fetch("flow", "realnvp", spec, create)
    second = store.fetch("flow", "realnvp", dict(spec), create)
    assert len(calls) == 1
    assert torch.equal(first["w"], second["w"])
    directory = store.path("flow", "realnvp", spec)
    assert {p.name for p in directory.iterdir()} == {
        "config.yaml",
        "model.pt",
        "train_metrics.json",
    }


def test_changed_setting_gives_a_new_key(tmp_path):
    store = Store(tmp_path)
    a = store.path("flow", "realnvp", {"seed": 0, "model": {"hidden": 64}})
    b = store.path("flow", "realnvp", {"seed": 0, "model": {"hidden": 32}})
    c = store.path("flow", "realnvp", {"model": {"hidden": 64}, "seed": 0})
    assert a != b and a == c


def test_corrupt_file_is_a_user_error_naming_it(tmp_path):
    store = Store(tmp_path)
    spec = {"seed": 1}
    store.fetch("classifier", "mlp", spec, lambda: ({"w": torch.ones(100)}, {}))
    file = store.path("classifier", "mlp", spec) / "model.pt"
    file.write_bytes(file.read_bytes()[:50])
    with pytest.raises(UserError, match=str(file)):
        store.fetch("classifier", "mlp", spec, lambda: ({}, {}))
