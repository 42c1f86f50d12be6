"""The artifact store: one build per config, reuse after, keys by the data's contents, no lock
left behind, clear errors on corrupt files."""

import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
from test_tabular_pipeline import DATA, needs_credit, write_csv
from test_tabular_pipeline import TINY as TABLE

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


def test_a_failed_build_leaves_neither_its_directory_nor_its_lock(tmp_path):
    store, spec = Store(tmp_path), {"seed": 0}

    def fail():
        raise UserError("bad value")

    with pytest.raises(UserError):
        store.fetch("flow", "realnvp", spec, fail)
    assert not store.path("flow", "realnvp", spec).exists()
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_an_interrupted_build_keeps_its_checkpoint_and_drops_its_lock(tmp_path):
    store, spec = Store(tmp_path), {"seed": 0}

    def interrupted():
        store.checkpoint("flow", "realnvp", spec).write_bytes(b"state")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        store.fetch("flow", "realnvp", spec, interrupted)
    directory = store.path("flow", "realnvp", spec)
    assert [p.name for p in directory.iterdir()] == ["checkpoint.pt"]  # resume needs it


COUNT = """
import sys
from pathlib import Path
from flowcf.locks import exclusive
lock, counter = Path(sys.argv[1]) / ".lock", Path(sys.argv[1]) / "counter"
for _ in range(200):
    with exclusive(lock):
        counter.write_text(str(int(counter.read_text()) + 1))
"""


def test_the_lock_excludes_while_each_holder_removes_it(tmp_path):
    # a lock file removed on release must not let a waiter and a newcomer both in: with
    # a lost update, the count would fall short
    (tmp_path / "counter").write_text("0")
    processes = [subprocess.Popen([sys.executable, "-c", COUNT, str(tmp_path)]) for _ in range(4)]
    assert [process.wait(timeout=300) for process in processes] == [0] * 4
    assert (tmp_path / "counter").read_text() == "800"
    assert not (tmp_path / ".lock").exists()


def artifacts_log(run: Path) -> str:
    """The store's lines of a run's log: which artifacts it loaded and which it created."""
    lines = (run / "train.log").read_text().splitlines()
    return "\n".join(line for line in lines if "flowcf.store" in line)


def test_a_data_file_changed_in_place_retrains_and_the_same_file_elsewhere_does_not(cli, tmp_path):
    data = write_csv(tmp_path)
    assert cli("train", *data, *TABLE, "hydra.run.dir=a") == 0
    assert "No classifier 'mlp'" in artifacts_log(tmp_path / "a")
    moved = tmp_path / "elsewhere"
    moved.mkdir()
    shutil.copy(tmp_path / "table.csv", moved / "mine.csv")
    shutil.copy(tmp_path / "schema.yaml", moved / "mine.yaml")
    elsewhere = ["data=csv", f"data.path={moved}/mine.csv", f"data.schema={moved}/mine.yaml"]
    assert cli("train", *elsewhere, *TABLE, "hydra.run.dir=b") == 0
    log = artifacts_log(tmp_path / "b")
    assert "Loaded classifier 'mlp'" in log and "Loaded flow 'realnvp'" in log
    assert "creating" not in log
    frame = pd.read_csv(tmp_path / "table.csv")  # every label flipped, at the same path
    frame["approved"] = frame["approved"].map({"yes": "no", "no": "yes"})
    frame.to_csv(tmp_path / "table.csv", index=False)
    assert cli("train", *data, *TABLE, "hydra.run.dir=c") == 0
    log = artifacts_log(tmp_path / "c")
    assert "No classifier 'mlp'" in log and "No flow 'realnvp'" in log
    assert "Loaded" not in log


@needs_credit
def test_german_credit_under_another_root_is_the_same_data(cli, tmp_path):
    for root in ("a", "b"):
        shutil.copytree(DATA / "german_credit", tmp_path / root / "german_credit")
    for root in ("a", "b"):
        args = ["data=german_credit", f"data.root={tmp_path / root}", *TABLE]
        assert cli("train", *args, f"hydra.run.dir=run_{root}") == 0
    log = artifacts_log(tmp_path / "run_b")
    assert "Loaded classifier 'mlp'" in log and "Loaded flow 'realnvp'" in log
    (config,) = (tmp_path / "store" / "classifier").glob("*/config.yaml")
    text = config.read_text()
    assert str(tmp_path) not in text and "files:" in text  # keyed by contents, not location
