"""Metrics: registered by name, computed per factual on a :class:`~flowcf.setting.Setting`
and aggregated.

Following the PPCEF authors' evaluation, coverage and validity are over all factuals; distances
and densities are over valid counterfactuals only.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from torch import Tensor

from flowcf.registry import Registry
from flowcf.setting import Setting

__all__ = ["METRICS", "Metric", "compute_metrics", "metric"]


@dataclass(frozen=True)
class Metric:
    """A named metric with its direction and the factuals it averages over."""

    name: str
    compute: Callable[[Setting], Tensor | float]
    higher_is_better: bool
    over: str = "valid"  # "valid": mean over valid counterfactuals; "all": over every factual

    def __call__(self, setting: Setting) -> float:
        values = self.compute(setting)
        if not isinstance(values, Tensor):
            return float(values)
        if self.over == "valid":
            values = values[setting.valid]
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
