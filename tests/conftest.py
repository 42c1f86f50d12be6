"""Shared fixtures: the ``flowcf`` command as a user runs it (in this process or in its own),
its composed config, and tiny settings."""

import copy
import functools
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hydra import compose as compose_config
from hydra import initialize_config_dir
from omegaconf import DictConfig

from flowcf.cli import CONFIG_DIR, STAGE_NAMES, main

FLOWCF = str(Path(sys.executable).parent / "flowcf")
TINY = [
    "data.n_samples=240",
    "model.layers=2",
    "model.hidden=16",
    "model.train.epochs=3",
    "classifier.hidden=16",
    "classifier.train.epochs=20",
    "method.max_steps=100",
    "progress=false",
]


@pytest.fixture(autouse=True)
def one_thread():
    """The in-process tests use tiny models: a second thread only adds contention."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def on_one_thread(args: tuple[str, ...]) -> tuple[str, ...]:
    """A stage's arguments with ``threads=1`` on a pytest-xdist worker (tests run in parallel
    there) unless they set ``threads``."""
    parallel = "PYTEST_XDIST_WORKER" in os.environ
    if (
        parallel
        and args[:1]
        and args[0] in STAGE_NAMES
        and not any(arg.startswith("threads=") for arg in args)
    ):
        return (*args, "threads=1")
    return args


@pytest.fixture
def flowcf(tmp_path):
    """Runs ``flowcf <args>`` in ``tmp_path`` with its own store, on one thread on a
    pytest-xdist worker (tests run in parallel there) unless the arguments set ``threads``;
    returns the finished process (a run longer than ``timeout`` seconds fails the test)."""

    def run(*args: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess:
        args = on_one_thread(args)
        env = {**os.environ, "FLOWCF_STORE": str(tmp_path / "store")}
        env.pop("HYDRA_FULL_ERROR", None)
        process = subprocess.run(
            [FLOWCF, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=timeout
        )
        if check and process.returncode != 0:
            raise AssertionError(f"flowcf {' '.join(args)} failed:\n{process.stderr}")
        return process

    return run


def in_process(directory: Path, monkeypatch: pytest.MonkeyPatch):
    """``flowcf <args>`` as a function running ``flowcf.cli.main`` in this process, in
    ``directory`` with its own store (``monkeypatch`` undoes the changes); it returns the exit
    code, 0 when ``main`` returns."""
    monkeypatch.chdir(directory)
    monkeypatch.setenv("FLOWCF_STORE", str(directory / "store"))
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    monkeypatch.setattr(sys, "argv", list(sys.argv))  # main hands Hydra its arguments there
    handler = signal.getsignal(signal.SIGTERM)

    def run(*args: str) -> int:
        try:
            main(list(on_one_thread(args)))
        except SystemExit as exit:
            return exit.code
        finally:
            signal.signal(signal.SIGTERM, handler)
        return 0

    return run


@pytest.fixture
def cli(tmp_path, monkeypatch):
    """Runs ``flowcf <args>`` in this process (``flowcf.cli.main``), in ``tmp_path`` with its
    own store; returns the exit code, 0 when it returns."""
    return in_process(tmp_path, monkeypatch)


@pytest.fixture(scope="session")
def compose():
    """Composes ``conf/`` with Hydra's compose API: ``compose(*overrides)`` is (a copy of) the
    config a run with those overrides reads, with the ``hydra`` node when ``hydra=True``; each
    worker composes each list of overrides once."""

    @functools.cache
    def composed(overrides: tuple[str, ...], hydra: bool) -> DictConfig:
        with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
            return compose_config("config", list(overrides), return_hydra_config=hydra)

    def run(*overrides: str, hydra: bool = False) -> DictConfig:
        return copy.deepcopy(composed(overrides, hydra))

    return run
