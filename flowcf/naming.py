"""Readable run and sweep directory names, as OmegaConf resolvers used in ``conf/config.yaml``.

A multirun names ``hydra.sweep.dir`` from the sweep's config, which holds none of the swept
values, so :func:`sweep_name` reads what is swept from the command line's overrides;
``hydra.sweep.subdir`` is resolved per job and names that job's data, methods and seed.
"""

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from omegaconf import DictConfig, ListConfig, OmegaConf

__all__ = ["method_names", "register_resolvers", "sweep_name"]

JOIN = "+"  # between the values of a swept group: run_moons_ppcef+wachter
NAMED = ("experiment", "data", "method")  # the groups a sweep dir names


def method_names(*, _root_: DictConfig) -> str:
    """The methods a run explains with: an experiment's ``methods`` (``place+revise+clarity``)
    or ``method.name``."""
    methods = _root_.get("methods")
    return JOIN.join(methods) if methods else _root_.method.name


def _swept(overrides: list[str]) -> dict[str, str]:
    """Swept groups that name a sweep (experiment, data, method) → their values joined
    (``method=a,b`` → ``a+b``); ``sweep`` for values only the config loader knows
    (``glob(...)``)."""
    swept = {}
    for override in OverridesParser.create().parse_overrides(overrides):
        if override.is_sweep_override() and override.key_or_group in NAMED:
            try:
                swept[override.key_or_group] = JOIN.join(override.sweep_string_iterator())
            except HydraException:
                swept[override.key_or_group] = "sweep"
    return swept


def sweep_name(
    stage: str,
    experiment: str | None,
    data: str,
    methods: DictConfig | None,
    method: str,
    overrides: ListConfig | list[str],
) -> str:
    """``<stage>[_<experiment>]_<data>_<methods>``, the name of a sweep dir: e.g.
    ``run_moons_ppcef+wachter`` (``flowcf run -m method=ppcef,wachter seed=0,1``) or
    ``run_place_mnist_mnist_place+revise+clarity`` (``experiment=place_mnist``).

    The arguments are the sweep's config (``stage``, ``hydra.runtime.choices.experiment``,
    ``data.name``, ``methods``, ``method.name``, ``hydra.overrides.task``), which holds none of
    the swept values; those are read from the overrides and joined (``method=a,b`` → ``a+b``).
    When the experiment itself is swept, data and methods are left out (each experiment picks
    its own; each job's subdir names them)."""
    swept = _swept(list(overrides))
    experiment = swept.get("experiment", experiment)
    parts = [stage] if experiment is None else [stage, experiment]
    if "experiment" not in swept:
        parts.append(swept.get("data", data))
        parts.append(JOIN.join(methods) if methods else swept.get("method", method))
    return "_".join(parts)


def register_resolvers() -> None:
    """Registers ``${sweep_name:}`` and ``${method_names:}`` (once per process).

    ``sweep_name`` is cached, as Hydra's ``now`` is (by its arguments' text, not their values):
    Hydra copies the sweep's resolver cache into each job's config, so every job resolves the
    sweep dir to the sweep's name, not to a name built from its own values."""
    if not OmegaConf.has_resolver("sweep_name"):
        OmegaConf.register_new_resolver("sweep_name", sweep_name, use_cache=True)
    if not OmegaConf.has_resolver("method_names"):
        OmegaConf.register_new_resolver("method_names", method_names)
