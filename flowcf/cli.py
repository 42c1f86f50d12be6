"""The ``flowcf`` command: ``flowcf <stage> [hydra overrides]``.

The first word is the stage; everything after it is passed to Hydra unchanged (``-m``,
``--cfg job``, ``--help``, ``key=value``). ``flowcf report <dir>`` takes the directory of runs
as its first argument. A user mistake is one line on stderr and exit code 2.
"""

import logging
import math
import os
import signal
import sys
from pathlib import Path

import hydra
from hydra._internal.utils import get_args_parser
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from flowcf.errors import UserError
from flowcf.io import atomic_write_text
from flowcf.naming import register_resolvers

__all__ = ["main"]

CONFIG_DIR = Path(__file__).resolve().parent.parent / "conf"
STAGE_NAMES = ("train", "explain", "evaluate", "run", "report")
USAGE = "usage: flowcf {train,explain,evaluate,run,report} [hydra overrides]"

log = logging.getLogger("flowcf")

register_resolvers()  # here, so that joblib and submitit workers unpickling `task` have them


def config_choices() -> dict[str, list[str]]:
    """Config group → the names of its YAML files, read from ``conf/`` (``conf/hydra/``, presets
    for Hydra's own groups such as ``hydra/launcher=slurm``, aside)."""
    return {
        group.name: sorted(p.stem for p in group.glob("*.yaml"))
        for group in sorted(CONFIG_DIR.iterdir())
        if group.is_dir() and group.name != "hydra"  # presets of Hydra's groups: Hydra checks them
    }


def overview() -> str:
    """``flowcf --help``: stages, config groups and their choices."""
    lines = [USAGE, "", "stages:"]
    lines += [
        "  train      train (or load) the classifier and the flow",
        "  explain    counterfactuals for the factuals (trains what is missing)",
        "  evaluate   metrics, table and plot for those counterfactuals",
        "  run        train, explain and evaluate in one run",
        "  report     flowcf report <dir>: one table (mean ± std) from the runs under <dir>",
        "",
        "config groups (pick with group=choice; `flowcf run --help` shows Hydra's help):",
    ]
    lines += [f"  {group:<12} {', '.join(names)}" for group, names in config_choices().items()]
    return "\n".join(lines)


def check_choices(overrides: list[str]) -> None:
    """Fails on an unknown config group choice, listing the valid ones (before Hydra runs)."""
    choices = config_choices()
    for override in overrides:
        key, sep, value = override.lstrip("+~").partition("=")
        if not sep or key not in choices:
            continue
        for choice in value.strip("[]").split(","):
            if choice and choice not in choices[key]:
                raise UserError(
                    f"unknown {key} '{choice}'; choose one of: {', '.join(choices[key])}"
                )


def check_overrides(overrides: list[str]) -> None:
    """Composes the config once before Hydra runs, so that an unknown key or a malformed
    override is one line (Hydra's own report spans several)."""
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    try:
        with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
            compose("config", overrides=overrides)
    except (HydraException, OmegaConfBaseException) as error:
        message = " ".join(str(error).split())  # Hydra's lines: what failed, then the hint
        if error.__cause__ is not None and str(error.__cause__).strip():
            message += f"; {str(error.__cause__).strip().splitlines()[0]}"
        raise UserError(message) from None


def task(cfg: DictConfig) -> float | None:
    """The Hydra task: runs the configured stage in this run's output directory and returns
    the mean of metric ``objective`` (for Optuna). In a multirun, a job whose ``table.csv``
    exists is skipped unless ``force=true`` (its objective read back), and a user error is
    written to ``failed.txt`` and the sweep carries on.

    A failed run, or an objective that is NaN (e.g. ``log_density`` with no valid
    counterfactual), returns ``None``: the Optuna sweeper records a failed trial (it warns
    "Failed experiment" and logs the failure rate) and samples the next one. NaN itself would
    end the search: Optuna 2's ``Study.tell`` raises on it, and so does the sweeper's retry."""
    import pandas as pd

    from flowcf.pipeline import FAILED, STAGES
    from flowcf.session import Session

    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    sweeping = hydra_cfg.mode == RunMode.MULTIRUN
    if sweeping and (run_dir / "table.csv").exists() and not cfg.force:
        log.info("Skipping %s: its results exist (force=true runs it again)", run_dir)
        result = pd.read_csv(run_dir / "metrics.csv")
    else:
        verbose = cfg.verbose or os.environ.get("HYDRA_FULL_ERROR") == "1"
        try:
            result = STAGES[cfg.stage](Session(cfg, run_dir))
        except KeyboardInterrupt:
            log.error(
                "interrupted: what was complete is saved; the same command resumes an interrupted "
                "training from its last checkpoint (resume=false starts over)"
            )
            sys.exit(130)
        except UserError as error:
            if verbose:
                raise
            log.error("%s", error)
            if not sweeping:
                sys.exit(2)
            atomic_write_text(run_dir / FAILED, f"{error}\n")
            return None
        (run_dir / FAILED).unlink(missing_ok=True)
    if cfg.objective is None:
        return None
    value = float(result[cfg.objective].mean())
    if math.isnan(value):
        log.warning("Objective %s is NaN: a failed trial", cfg.objective)
        return None
    return value


#: Hydra's flags that choose what a call does; at most one may be given.
HYDRA_MODES = ("run", "multirun", "cfg", "info", "shell_completion")


def interrupt(signum: int, frame) -> None:
    """SIGTERM (a cluster's or ``kill``'s stop) ends a run as Ctrl-C does."""
    raise KeyboardInterrupt(signal.Signals(signum).name)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``flowcf`` console script."""
    signal.signal(signal.SIGTERM, interrupt)
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(overview())
        return
    stage, rest = argv[0], argv[1:]
    try:
        if stage not in STAGE_NAMES:
            raise UserError(f"unknown stage '{stage}'; choose one of: {', '.join(STAGE_NAMES)}")
        if stage == "report" and rest and "=" not in rest[0] and not rest[0].startswith("-"):
            rest = [f"paths.report={Path(rest[0]).resolve()}", *rest[1:]]
        parsed = get_args_parser().parse_intermixed_args(rest)  # flags may follow overrides
        modes = [f"--{mode}" for mode in HYDRA_MODES if getattr(parsed, mode)]
        if len(modes) > 1:
            raise UserError(f"{' and '.join(modes)} exclude each other; pass one of them")
        check_choices(parsed.overrides)
        if not parsed.multirun:  # a sweep's overrides list several values; Hydra checks them
            check_overrides(parsed.overrides)
        overrides = parsed.overrides
    except UserError as error:
        print(f"flowcf: error: {error}", file=sys.stderr)
        sys.exit(2)
    # Hydra's parser wants its flags before the overrides; the stage goes last so it wins.
    flags = [arg for arg in rest if arg not in overrides]
    sys.argv = [f"flowcf {stage}", *flags, *overrides, f"stage={stage}"]
    hydra.main(config_path=str(CONFIG_DIR), config_name="config", version_base="1.3")(task)()
