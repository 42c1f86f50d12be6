"""Density metrics under the evaluation flow: log p(x' | y') and plausibility (DESIGN §6)."""

import torch

from flowcf.density import class_log_prob, class_quantiles
from flowcf.errors import UserError
from flowcf.metrics.base import EvaluationContext, metric

__all__ = ["log_density", "plausibility"]


def _flow(context: EvaluationContext):
    if context.flow is None:
        raise UserError("log_density and plausibility need an evaluation flow")
    return context.flow


@metric("log_density", higher_is_better=True)
@torch.no_grad()
def log_density(context: EvaluationContext):
    """log p(x' | y') in nats."""
    cfs = context.cfs
    return class_log_prob(_flow(context), cfs.x_cf.nan_to_num(), cfs.y_target, context.num_classes)


@metric("plausibility", higher_is_better=True)
def plausibility(context: EvaluationContext):
    """Share of counterfactuals with log p(x' | y') ≥ τ_{y'}, τ_c the
    ``plausibility_quantile`` of the training log densities of class c."""
    q = context.options.get("plausibility_quantile", 0.5)
    tau = class_quantiles(_flow(context), context.x_train, context.y_train, context.num_classes, q)
    return log_density(context) >= tau[context.cfs.y_target]
