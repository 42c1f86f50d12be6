"""Sweeps on a real SLURM cluster through submitit (``make test-slurm``, which starts a one-node
cluster with scripts/slurm_local.sh): every job runs as a SLURM job and shares the store, the
sweep writes its report, and a preempted training is requeued and resumes from its checkpoint.
Skipped when no cluster answers ``sinfo``."""

import os
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
from conftest import FLOWCF, TINY

from flowcf.training import PREEMPTION_SIGNAL

pytestmark = pytest.mark.slurm

#: A job runs on one CPU: two run at once on a two-core machine.
SLURM = ["hydra/launcher=slurm", "hydra.launcher.timeout_min=10", "threads=1"]


@pytest.fixture(scope="module", autouse=True)
def cluster() -> None:
    """Skips the tests unless a SLURM cluster has a node up (``SLURM_CONF`` names its config)."""
    try:
        nodes = subprocess.run(
            ["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=30
        ).stdout.split()
    except (OSError, subprocess.TimeoutExpired):
        nodes = []
    if not {"idle", "mixed", "allocated"} & set(nodes):
        pytest.skip("no SLURM cluster: scripts/slurm_local.sh start; export SLURM_CONF=...")


def accounting(job: str) -> list[str]:
    """``sacct``'s records of ``job`` (an array's tasks, a requeued job's runs) as
    ``<id>|<state>``, waiting until slurmdbd has recorded the end of each."""
    deadline = time.monotonic() + 60
    while True:
        lines = subprocess.run(
            ["sacct", "-n", "-X", "-P", "-D", "-o", "JobID,State", "-j", job],
            capture_output=True, text=True, check=True,
        ).stdout.split()  # fmt: skip
        if (lines and "RUNNING" not in str(lines)) or time.monotonic() > deadline:
            return lines
        time.sleep(1)


def squeue(job: str) -> str:
    """Why ``job`` is pending (``squeue``'s reason; ``None`` while it runs)."""
    return subprocess.run(
        ["squeue", "-h", "-j", job, "-o", "%r"], capture_output=True, text=True
    ).stdout.strip()


def job_ids(sweep: Path) -> list[str]:
    """The SLURM job ids of a sweep's jobs: submitit's folders with a job's pickle."""
    return sorted(p.parent.name for p in (sweep / ".submitit").glob("*/*_submitted.pkl"))


def test_a_sweep_runs_each_job_on_slurm_builds_each_model_once_and_reports(flowcf, tmp_path):
    # seed first: the two jobs that run at once share a seed, so one waits for the other's models
    flowcf("run", "-m", *SLURM, "seed=0,1", "method=ppcef,wachter", *TINY,
           "hydra.sweep.dir=sweep", timeout=900)  # fmt: skip
    sweep = tmp_path / "sweep"
    jobs = job_ids(sweep)
    array = {job.split("_")[0] for job in jobs}
    assert len(jobs) == 4 and len(array) == 1, jobs
    assert sorted(accounting(array.pop())) == [f"{job}|COMPLETED" for job in jobs]

    logs = [(run / "run.log").read_text() for run in sorted(sweep.glob("[0-9]_*"))]
    assert len(logs) == 4
    for kind in ("classifier", "flow"):
        built = sum(f"No {kind} '" in log for log in logs)
        loaded = sum(f"Loaded {kind} '" in log for log in logs)
        assert (built, loaded) == (2, 2), kind  # one per seed, loaded by the other method's job
        assert len([p for p in (tmp_path / "store" / kind).iterdir() if p.is_dir()]) == 2

    assert (sweep / "report.md").is_file()
    report = pd.read_csv(sweep / "report.csv")
    assert sorted(report["method"]) == ["ppcef", "wachter"]
    assert report["runs"].tolist() == [2, 2]


def test_a_preempted_training_is_requeued_and_ends_as_an_uninterrupted_one(flowcf, tmp_path):
    """``USR2``, what SLURM sends before a time limit or a preemption: the training writes its
    checkpoint at the end of the epoch, submitit requeues the job, the requeued job resumes
    from the checkpoint and saves exactly the flow an uninterrupted training gives."""
    args = [*TINY, "model.train.epochs=300", "model.train.patience=null", "checkpoint_every=0"]
    env = {**os.environ, "FLOWCF_STORE": str(tmp_path / "store")}
    sweep = subprocess.Popen(
        [FLOWCF, "train", "-m", *SLURM, *args, "hydra.sweep.dir=sweep"], cwd=tmp_path, env=env,
        text=True, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 600
    while not list((tmp_path / "store" / "flow").glob("*/checkpoint.pt")):
        assert sweep.poll() is None and time.monotonic() < deadline, sweep.communicate()[1]
        time.sleep(0.2)
    (job,) = job_ids(tmp_path / "sweep")
    subprocess.run(["scancel", f"--signal={PREEMPTION_SIGNAL.name}", job], check=True)
    # SLURM makes a requeued job wait two minutes (its EligibleTime); this one may start now
    while squeue(job) != "BeginTime":
        assert sweep.poll() is None and time.monotonic() < deadline, sweep.communicate()[1]
        time.sleep(0.2)
    subprocess.run(["scontrol", "update", f"JobId={job}", "StartTime=now"], check=True)
    stderr = sweep.communicate(timeout=600)[1]
    assert sweep.returncode == 0, stderr

    log = (tmp_path / "sweep" / "0_moons_ppcef_seed0" / "train.log").read_text()
    held, resumed = (
        log.index("USR2: the training stops"),
        log.index("resuming from the checkpoint"),
    )
    assert held < resumed
    submitit_log = (tmp_path / "sweep" / ".submitit" / job / f"{job}_0_log.err").read_text()
    assert f"Requeued job {job}" in submitit_log
    assert accounting(job) == [f"{job}|REQUEUED", f"{job}|COMPLETED"]

    flowcf("train", *args, "threads=1", "hydra.run.dir=fresh", f"paths.store={tmp_path / 'fresh'}")
    artifacts = [next(p for p in (store / "flow").iterdir() if p.is_dir()) for store in
                 (tmp_path / "store", tmp_path / "fresh")]  # fmt: skip
    states = [torch.load(p / "model.pt")["state_dict"] for p in artifacts]
    for key, value in states[0].items():
        assert torch.equal(value, states[1][key]), key
