"""A run directory: the resolved config a run saves there, whether a finished run is the one a
sweep would run now, and what a failed run leaves.

A run writes its resolved config to ``config.yaml`` first and ``table.csv`` last (when it
evaluates). A sweep re-run into the same ``hydra.sweep.dir`` skips a job only when it finished
and its saved config equals the one it would run now, apart from :data:`UNCOMPARED`; otherwise
the job runs again, and the log names the keys that changed.
"""

import platform
import shutil
from collections.abc import Iterable, Mapping
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pandas as pd
import torch
import yaml
from omegaconf import DictConfig, OmegaConf

from flowcf.io import atomic_write_text

__all__ = [
    "CONFIG",
    "FAILED",
    "UNCOMPARED",
    "changes",
    "config_changes",
    "leave_failed",
    "resolved_config",
    "results",
    "snapshot",
]

CONFIG = "config.yaml"
FAILED = "failed.txt"
FINISHED = "table.csv"
#: Top-level keys of a saved config that say how a run shows its progress, how fast it runs,
#: where it writes and with which package versions, but not what it computes: they may differ
#: between a finished sweep job and its re-run, which is then still skipped. The store does not
#: key on them either, so the re-run would load the same models.
UNCOMPARED = (
    "versions", "paths", "progress", "verbose", "force", "threads", "resume", "checkpoint_every"
)  # fmt: skip


def resolved_config(cfg: DictConfig) -> dict[str, Any]:
    """The config as plain YAML values, resolved, with the package versions under ``versions``."""
    resolved = yaml.safe_load(OmegaConf.to_yaml(cfg, resolve=True))
    resolved["versions"] = {
        "flowcf": version("flowcf"),
        "torch": str(torch.__version__),
        "python": platform.python_version(),
    }
    return resolved


def changes(saved: Mapping[str, Any], current: Mapping[str, Any], prefix: str = "") -> list[str]:
    """The dotted keys whose values differ between two configs, each as
    ``key (saved → current)``; ``missing`` where a side lacks the key.

    Examples:
        >>> changes({"method": {"max_steps": 300, "lr": 0.1}}, {"method": {"max_steps": 2000,
        ...          "lr": 0.1}, "seed": 1})
        ['method.max_steps (300 → 2000)', 'seed (missing → 1)']
    """
    found = []
    for key in sorted({*saved, *current}, key=str):
        old, new = saved.get(key, "missing"), current.get(key, "missing")
        if isinstance(old, Mapping) and isinstance(new, Mapping):
            found += changes(old, new, f"{prefix}{key}.")
        elif old != new:
            found.append(f"{prefix}{key} ({old} → {new})")
    return found


def config_changes(run_dir: Path, cfg: DictConfig) -> list[str] | None:
    """How the config of the finished run in ``run_dir`` differs from ``cfg``, key by key
    (:func:`changes`, without :data:`UNCOMPARED`), or ``None`` when no run finished there."""
    if not (run_dir / FINISHED).is_file():
        return None
    if not (run_dir / CONFIG).is_file():
        return [f"{CONFIG} (missing)"]
    saved = yaml.safe_load((run_dir / CONFIG).read_text()) or {}
    current = resolved_config(cfg)
    for config in (saved, current):
        for key in UNCOMPARED:
            config.pop(key, None)
    return changes(saved, current)


def results(run_dir: Path) -> pd.DataFrame:
    """The metrics a finished run wrote: every fold's (``folds.csv``) or its own
    (``metrics.csv``)."""
    folds = run_dir / "folds.csv"
    return pd.read_csv(folds if folds.is_file() else run_dir / "metrics.csv")


def snapshot(directory: Path) -> dict[Path, tuple[int, int]]:
    """Every file under ``directory`` (resolved paths) with its size and modification time."""
    if not directory.is_dir():
        return {}
    return {
        path: (stat.st_size, stat.st_mtime_ns)
        for path in directory.resolve().rglob("*")
        if path.is_file() and (stat := path.stat())
    }


def leave_failed(
    run_dir: Path,
    before: Mapping[Path, tuple[int, int]],
    error: str,
    keep: Iterable[Path],
    remove: Iterable[Path],
) -> None:
    """Leaves in ``run_dir`` only what a run that failed with ``error`` may leave: ``failed.txt``
    (the error) and the paths ``keep`` (its log; the store, should it lie inside). Removes the
    files that are new or changed since ``before`` (the :func:`snapshot` taken when the run
    started), the folders left empty, and the folders ``remove`` (Hydra's record of the run's
    config, ``.hydra/``)."""
    kept = [Path(path).resolve() for path in keep]
    for path, stamp in snapshot(run_dir).items():
        if before.get(path) != stamp and not any(path.is_relative_to(k) for k in kept):
            path.unlink()
    for folder in sorted((p for p in run_dir.resolve().rglob("*") if p.is_dir()), reverse=True):
        if not any(folder.iterdir()) and not any(folder.is_relative_to(k) for k in kept):
            folder.rmdir()
    for folder in remove:
        shutil.rmtree(folder, ignore_errors=True)
    atomic_write_text(run_dir / FAILED, f"{error}\n")
