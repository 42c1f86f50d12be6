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

from flowcf import rundir
from flowcf.errors import UserError
from flowcf.naming import register_resolvers

__all__ = ["main"]

CONFIG_DIR = Path(__file__).resolve().parent.parent / "conf"
STAGE_NAMES = ("train", "explain", "evaluate", "run", "report")
USAGE = "usage: flowcf {train,explain,evaluate,run,report} [hydra overrides]"

log = logging.getLogger("flowcf")

register_resolvers()  # here, so that joblib and submitit workers unpickling `task` have them


def config_choices() -> dict[str, list[str]]:
    """Config group → the names of its YAML files, read from ``conf/``, with their subfolder
    (``data=ppcef/moons``); ``conf/hydra/``, presets for Hydra's own groups such as
    ``hydra/launcher=slurm``, aside."""
    return {
        group.name: sorted(
            p.relative_to(group).with_suffix("").as_posix() for p in group.rglob("*.yaml")
        )
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
            if choice and "(" not in choice and choice not in choices[key]:  # glob(...): Hydra
                raise UserError(
                    f"unknown {key} '{choice}'; choose one of: {', '.join(choices[key])}"
                )


def sweep_runs(overrides: list[str]) -> list[list[str]]:
    """The overrides of enough runs of a sweep that each swept value is in one: the first
    value of every sweep, then each other value of one sweep at a time (an Optuna interval by
    its midpoint, a glob by the config choices it matches)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import Glob, IntervalSweep
    from hydra.errors import HydraException

    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except HydraException as error:
        raise UserError(" ".join(str(error).split())) from None
    choices = config_choices()
    values = []
    for override in parsed:
        value = override.value()
        if not override.is_sweep_override():
            values.append([override.input_line])
            continue
        if isinstance(value, IntervalSweep):
            middle = (value.start + value.end) / 2
            swept = [str(int(middle) if isinstance(value.start, int) else middle)]
        elif isinstance(value, Glob):
            swept = value.filter(choices.get(override.key_or_group, []))
        else:
            swept = list(override.sweep_string_iterator())
        values.append([f"{override.get_key_element()}={v}" for v in swept])
    values = [options for options in values if options]  # a glob may match no choice
    first = [options[0] for options in values]
    runs = [first]
    for index, options in enumerate(values):
        runs += [[*first[:index], other, *first[index + 1 :]] for other in options[1:]]
    return runs


def check_overrides(runs: list[list[str]]) -> None:
    """Composes the config of each run before Hydra starts and checks every value
    (:func:`flowcf.checks.check_config`), so that a mistake is one line naming the key. An
    unknown key gets the closest keys of the config and config groups (Hydra's advice to add
    it with ``+`` would be the wrong fix for a typo)."""
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import ConfigAttributeError, ConfigKeyError, OmegaConfBaseException

    from flowcf.checks import check_config, unknown_key

    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        for overrides in runs:
            try:
                cfg = compose("config", overrides=overrides)
            except (HydraException, OmegaConfBaseException) as error:
                cause = error.__cause__
                if isinstance(cause, ConfigAttributeError | ConfigKeyError) and cause.full_key:
                    parent = cause.full_key.rpartition(".")[0]
                    known = [f"{parent}.{k}" if parent else k for k in cause.parent_node or {}]
                    known += [] if parent else list(config_choices())
                    hint = "`flowcf run --cfg job` lists the keys"
                    raise unknown_key(cause.full_key, known, hint) from None
                message = " ".join(str(error).split())  # Hydra's lines: what failed, the hint
                if cause is not None and str(cause).strip():
                    message += f"; {str(cause).strip().splitlines()[0]}"
                raise UserError(message) from None
            check_config(cfg)


def task(cfg: DictConfig) -> float | None:
    """The Hydra task: runs the configured stage in this run's output directory and returns
    the mean of metric ``optimized_metric`` (for Optuna). In a multirun, a finished job whose
    saved config equals this one is skipped unless ``force=true`` (its optimized metric read
    back; see :mod:`flowcf.rundir`), and a user error ends the job but not the sweep. A failed
    run keeps its log and ``failed.txt`` (the error) and nothing else it wrote.

    A failed run, or an optimized metric that is NaN (e.g. ``log_density`` with no valid
    counterfactual), returns ``None``: the Optuna sweeper records a failed trial (it warns
    "Failed experiment" and logs the failure rate) and samples the next one. NaN itself would
    end the search: Optuna 2's ``Study.tell`` raises on it, and so does the sweeper's retry."""
    from flowcf.pipeline import STAGES
    from flowcf.session import Session

    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    sweeping = hydra_cfg.mode == RunMode.MULTIRUN
    changed = rundir.config_changes(run_dir, cfg) if sweeping and not cfg.force else None
    if changed == []:
        log.info("Skipping %s: it finished with this config (force=true runs it again)", run_dir)
        result = rundir.results(run_dir)
    else:
        if changed:
            log.info("Running %s again: its config changed: %s", run_dir, "; ".join(changed))
        verbose = cfg.verbose or os.environ.get("HYDRA_FULL_ERROR") == "1"
        before = rundir.snapshot(run_dir)
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
            hydra_record = [run_dir / hydra_cfg.output_subdir] if hydra_cfg.output_subdir else []
            rundir.leave_failed(
                run_dir, before, str(error),
                keep=[run_dir / f"{hydra_cfg.job.name}.log", Path(cfg.paths.store)],
                remove=hydra_record,
            )  # fmt: skip
            if not sweeping:
                sys.exit(2)
            return None
        (run_dir / rundir.FAILED).unlink(missing_ok=True)
    if cfg.optimized_metric is None:
        return None
    value = float(result[cfg.optimized_metric].mean())
    if math.isnan(value):
        log.warning("Optimized metric %s is NaN: a failed trial", cfg.optimized_metric)
        return None
    return value


def report_arguments(rest: list[str]) -> list[str]:
    """``flowcf report <dir> ...`` as Hydra's arguments (``paths.report=<dir>``), after checking
    that the directory exists, so that a wrong one creates nothing (not even Hydra's run dir);
    without a directory, only Hydra's flags (``--help``, ``--cfg job``) may follow."""
    if rest and "=" not in rest[0] and not rest[0].startswith("-"):
        rest = [f"paths.report={Path(rest[0]).resolve()}", *rest[1:]]
    given = [arg.partition("=")[2] for arg in rest if arg.startswith("paths.report=")]
    if given and not Path(given[-1]).is_dir():
        raise UserError(f"flowcf report: {given[-1]} is not a directory of runs")
    if not given and not any(arg.startswith("-") for arg in rest):
        raise UserError("flowcf report needs a directory of runs: flowcf report <dir>")
    return rest


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
        if stage == "report":
            rest = report_arguments(rest)
        parsed = get_args_parser().parse_intermixed_args(rest)  # flags may follow overrides
        modes = [f"--{mode}" for mode in HYDRA_MODES if getattr(parsed, mode)]
        if len(modes) > 1:
            raise UserError(f"{' and '.join(modes)} exclude each other; pass one of them")
        check_choices(parsed.overrides)
        check_overrides(sweep_runs(parsed.overrides) if parsed.multirun else [parsed.overrides])
        overrides = parsed.overrides
    except UserError as error:
        print(f"flowcf: error: {error}", file=sys.stderr)
        sys.exit(2)
    # Hydra's parser wants its flags before the overrides; the stage goes last so it wins.
    flags = [arg for arg in rest if arg not in overrides]
    sys.argv = [f"flowcf {stage}", *flags, *overrides, f"stage={stage}"]
    hydra.main(config_path=str(CONFIG_DIR), config_name="config", version_base="1.3")(task)()
