"""Reliability: the same config and seed give the same results; processes share the store;
an interrupted training resumes; every user mistake is one line and exit code 2."""

import os
import signal
import subprocess
import time

import pandas as pd
import pytest
import torch
from conftest import FLOWCF, TINY, in_process
from test_tabular_pipeline import write_csv

from flowcf.flows import FLOWS

#: TINY on one thread, for runs in this process (pytest-xdist runs tests in parallel).
SMALL = [*TINY, "threads=1"]


def test_the_same_config_and_seed_give_identical_results(flowcf, cli, tmp_path):
    """In a fresh process and in this one, which has already run other stages (separate
    stores: the second run trains everything again)."""
    flowcf("run", *TINY, "hydra.run.dir=a", f"paths.store={tmp_path / 'a' / 'store'}")
    assert cli("run", *SMALL, "hydra.run.dir=b", f"paths.store={tmp_path / 'b' / 'store'}") == 0
    metrics = [pd.read_csv(tmp_path / run / "metrics.csv").drop(columns="time") for run in "ab"]
    pd.testing.assert_frame_equal(*metrics)
    counterfactuals = [pd.read_csv(tmp_path / run / "counterfactuals.csv") for run in "ab"]
    pd.testing.assert_frame_equal(*counterfactuals)
    assert cli("run", *SMALL, "seed=1", "hydra.run.dir=c") == 0
    assert not pd.read_csv(tmp_path / "c" / "counterfactuals.csv").equals(counterfactuals[0])


def test_two_processes_training_one_artifact_build_it_once(tmp_path):
    env = {**os.environ, "FLOWCF_STORE": str(tmp_path / "store")}
    args = [FLOWCF, "train", *SMALL, "model.train.epochs=30"]
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


def test_sigterm_mid_training_then_resume_ends_as_an_uninterrupted_training(cli, tmp_path, capsys):
    """SIGTERM leaves the last complete checkpoint and no half-written file; the same command
    resumes from it and ends with exactly the flow an uninterrupted training gives."""
    args = ["train", *SMALL, "model.train.epochs=300", "model.train.patience=null",
            "checkpoint_every=0"]  # fmt: skip
    env = {**os.environ, "FLOWCF_STORE": str(tmp_path / "store")}
    process = subprocess.Popen(
        [FLOWCF, *args, "hydra.run.dir=a"], cwd=tmp_path, env=env, text=True,
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    flows = tmp_path / "store" / "flow"
    deadline = time.monotonic() + 300
    while not list(flows.glob("*/checkpoint.pt")) and process.poll() is None:
        assert time.monotonic() < deadline, "no checkpoint within 300 s"
        time.sleep(0.2)
    process.send_signal(signal.SIGTERM)
    stderr = process.communicate(timeout=60)[1]
    assert process.returncode == 130, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    (artifact,) = [p for p in flows.iterdir() if p.is_dir()]
    assert sorted(p.name for p in artifact.iterdir()) == ["checkpoint.pt"]

    assert cli(*args, "hydra.run.dir=b") == 0
    assert "resuming from the checkpoint of epoch" in capsys.readouterr().err
    assert sorted(p.name for p in artifact.iterdir()) == [
        "config.yaml", "model.pt", "train_metrics.json"
    ]  # fmt: skip
    assert cli(*args, "hydra.run.dir=c", f"paths.store={tmp_path / 'fresh'}") == 0
    (fresh,) = [p for p in (tmp_path / "fresh" / "flow").iterdir() if p.is_dir()]
    states = [torch.load(p / "model.pt")["state_dict"] for p in (artifact, fresh)]
    for key, value in states[0].items():
        assert torch.equal(value, states[1][key]), key


#: A user mistake found in the data before anything trains, and the message it gives (those
#: the config alone decides are in test_checks.py, in-process).
EARLY_MISTAKES = [
    (["data=mnist", "data.root=/nowhere"], "MNIST not found: looked in /nowhere/mnist"),
    (["EMPTY_CSV"], "table.csv has no data rows"),
]
#: A user mistake found once the classifier and the flow exist, and the message it gives.
LATE_MISTAKES = [
    (["method.target=7"], "method.target must be one of next, flip or a class in 0..1, got 7"),
]


@pytest.fixture(scope="module")
def trained_store(tmp_path_factory) -> str:
    """A store with TINY's classifier and flow, shared by the tests of late mistakes."""
    root = tmp_path_factory.mktemp("trained")
    with pytest.MonkeyPatch.context() as monkeypatch:
        assert in_process(root, monkeypatch)("train", *SMALL) == 0
    return str(root / "store")


def assert_one_line_error(code: int, capsys, message: str) -> None:
    """The command exited with code 2 and its stderr has one line about an error: ``message``."""
    err = capsys.readouterr().err
    assert code == 2, err
    errors = [line for line in err.splitlines() if "error" in line.lower()]
    assert len(errors) == 1 and message in errors[0], err
    assert "Traceback" not in err


@pytest.mark.parametrize(("args", "message"), EARLY_MISTAKES)
def test_early_mistakes_are_one_line(cli, tmp_path, capsys, args, message):
    if args == ["EMPTY_CSV"]:
        args = write_csv(tmp_path, rows=0)
    assert_one_line_error(cli("train", *args, "threads=1"), capsys, message)


@pytest.mark.parametrize(("args", "message"), LATE_MISTAKES)
def test_late_mistakes_are_one_line(cli, trained_store, capsys, args, message):
    code = cli("explain", *SMALL, *args, f"paths.store={trained_store}")
    assert_one_line_error(code, capsys, message)


def test_damaged_artifacts_are_one_line_errors(cli, tmp_path, capsys):
    """A truncated model, a model of another dimension and a truncated training checkpoint."""
    assert cli("train", *SMALL) == 0
    (flow,) = [p for p in (tmp_path / "store" / "flow").iterdir() if p.is_dir()]
    model = flow / "model.pt"
    original = model.read_bytes()
    model.write_bytes(original[: len(original) // 2])
    capsys.readouterr()
    assert_one_line_error(cli("train", *SMALL), capsys, "delete that directory")
    torch.save({"state_dict": FLOWS.build("realnvp", 3, 2, layers=2).state_dict()}, model)
    assert_one_line_error(cli("train", *SMALL), capsys, "delete it to retrain")
    model.unlink()
    (flow / "checkpoint.pt").write_bytes(original[:100])
    assert_one_line_error(cli("train", *SMALL), capsys, "or pass resume=false")
    assert cli("train", *SMALL, "resume=false") == 0
    assert model.is_file() and not (flow / "checkpoint.pt").exists()


def test_a_failed_run_leaves_only_its_log_and_failed_txt_and_no_lock(cli, tmp_path):
    # method.target=7 fails once the data (two classes) and the models are there: after the run
    # wrote config.yaml and train.json
    assert cli("run", *SMALL, "method.target=7", "hydra.run.dir=run") == 2
    run = tmp_path / "run"
    assert sorted(p.name for p in run.iterdir()) == ["failed.txt", "run.log"]
    assert (
        "method.target must be one of next, flip or a class in 0..1"
        in (run / "failed.txt").read_text()
    )
    store = tmp_path / "store"
    assert [p for p in store.rglob("*lock*")] == []
    assert len(list(store.glob("*/*/model.pt"))) == 2  # the classifier and the flow stay


def test_report_of_a_missing_directory_creates_nothing(cli, tmp_path, capsys):
    assert cli("report", str(tmp_path / "nowhere")) == 2
    assert "nowhere is not a directory of runs" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
