"""Metrics: registered by name, computed per factual on a :class:`~flowcf.setting.Setting`
and averaged over a population.

Each metric names its default population (:data:`POPULATIONS`): coverage and validity are over
all factuals, distances, densities and outlier scores over valid counterfactuals. The
``metrics.over`` option (metric name → population) changes it for one run: the PPCEF authors'
evaluation takes validity, plausibility, log density, LOF and the isolation forest over every
returned counterfactual, valid or not (``experiment=ppcef_benchmark``); with every
counterfactual returned, validity over ``returned`` equals validity over ``all``.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from torch import Tensor

from flowcf.registry import Registry
from flowcf.setting import Setting

__all__ = ["METRICS", "POPULATIONS", "Metric", "compute_metrics", "metric"]


#: The factuals a metric averages over: every factual, those with a returned counterfactual,
#: or those with a valid one.
POPULATIONS: dict[str, Callable[[Setting], Tensor | None]] = {
    "all": lambda setting: None,
    "returned": lambda setting: setting.cfs.found,
    "valid": lambda setting: setting.valid,
}


@dataclass(frozen=True)
class Metric:
    """A named metric with its direction and the factuals it averages over by default
    (a key of :data:`POPULATIONS`; ``metrics.over.<name>`` overrides it)."""

    name: str
    compute: Callable[[Setting], Tensor | float]
    higher_is_better: bool
    over: str = "valid"

    def __call__(self, setting: Setting) -> float:
        values = self.compute(setting)
        if not isinstance(values, Tensor):
            return float(values)
        over = (setting.options.get("over") or {}).get(self.name, self.over)
        keep = POPULATIONS[over](setting)
        if keep is not None:
            values = values[keep]
        return values.float().mean().item() if len(values) else float("nan")


METRICS: Registry = Registry("metric")


def metric(name: str, *, higher_is_better: bool, over: str = "valid"):
    """Registers a function ``setting -> per-factual values or a scalar`` as a metric."""

    def decorator(compute: Callable[[Setting], Tensor | float]):
        METRICS.register(name)(Metric(name, compute, higher_is_better, over))
        return compute

    return decorator


def compute_metrics(names: Iterable[str], setting: Setting) -> dict[str, float]:
    """Every named metric on ``setting``, in the given order."""
    return {name: METRICS.get(name)(setting) for name in names}
