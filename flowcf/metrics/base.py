"""Metrics: registered by name, computed per factual and averaged over a population.

Each metric names its default population (:data:`POPULATIONS`): coverage and validity are over
all factuals, distances, densities and outlier scores over valid counterfactuals. The
``metrics.over`` option (metric name → population) changes it for one run: the PPCEF authors'
evaluation takes validity, plausibility, log density, LOF and the isolation forest over every
returned counterfactual, valid or not (``experiment=ppcef_benchmark``); with every
counterfactual returned, validity over ``returned`` equals validity over ``all``.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cached_property

import torch
from torch import Tensor, nn

from flowcf.data.constraints import Constraints
from flowcf.methods.base import Counterfactuals
from flowcf.registry import Registry

__all__ = ["METRICS", "POPULATIONS", "EvaluationContext", "Metric", "compute_metrics", "metric"]


@dataclass
class EvaluationContext:
    """What metrics are computed from.

    Attributes:
        cfs: The counterfactuals to score.
        classifier: The explained classifier.
        flow: The evaluation flow (class-conditional), or ``None``.
        x_train, y_train: Training data, for thresholds such as τ.
        num_classes: Number of classes.
        options: The ``metrics`` config (e.g. ``plausibility_quantile``, ``over``).
        x_real, y_real: Real images and their labels (the test split), for ``fid``; ``None``
            for data that are not images.
        autoencoder: The deterministic autoencoder whose codes the flow models (``None``: the
            flow models the inputs).
        z_train: The training data in the flow's space (``x_train`` when ``None``).
        constraints: What counterfactuals may change (tabular data), or ``None``: anything.
    """

    cfs: Counterfactuals
    classifier: nn.Module
    flow: nn.Module | None
    x_train: Tensor
    y_train: Tensor
    num_classes: int
    options: dict = field(default_factory=dict)
    x_real: Tensor | None = None
    y_real: Tensor | None = None
    autoencoder: nn.Module | None = None
    z_train: Tensor | None = None
    constraints: Constraints | None = None

    def encode(self, x: Tensor) -> Tensor:
        """Inputs to the flow's space."""
        return x if self.autoencoder is None else self.autoencoder.encode(x)

    @cached_property
    @torch.no_grad()
    def valid(self) -> Tensor:
        """Whether the classifier assigns each counterfactual to its target, (B,)."""
        cfs = self.cfs
        predicted = self.classifier(cfs.x_cf.nan_to_num()).argmax(dim=1)
        return cfs.found & (predicted == cfs.y_target)


#: The factuals a metric averages over: every factual, those with a returned counterfactual,
#: or those with a valid one.
POPULATIONS: dict[str, Callable[[EvaluationContext], Tensor | None]] = {
    "all": lambda context: None,
    "returned": lambda context: context.cfs.found,
    "valid": lambda context: context.valid,
}


@dataclass(frozen=True)
class Metric:
    """A named metric with its direction and the factuals it averages over by default
    (a key of :data:`POPULATIONS`; ``metrics.over.<name>`` overrides it)."""

    name: str
    compute: Callable[[EvaluationContext], Tensor | float]
    higher_is_better: bool
    over: str = "valid"

    def __call__(self, context: EvaluationContext) -> float:
        values = self.compute(context)
        if not isinstance(values, Tensor):
            return float(values)
        over = (context.options.get("over") or {}).get(self.name, self.over)
        keep = POPULATIONS[over](context)
        if keep is not None:
            values = values[keep]
        return values.float().mean().item() if len(values) else float("nan")


METRICS: Registry = Registry("metric")


def metric(name: str, *, higher_is_better: bool, over: str = "valid"):
    """Registers a function ``context -> per-factual values or a scalar`` as a metric."""

    def decorator(compute: Callable[[EvaluationContext], Tensor | float]):
        METRICS.register(name)(Metric(name, compute, higher_is_better, over))
        return compute

    return decorator


def compute_metrics(names: Iterable[str], context: EvaluationContext) -> dict[str, float]:
    """Every named metric on ``context``, in the given order."""
    return {name: METRICS.get(name)(context) for name in names}
