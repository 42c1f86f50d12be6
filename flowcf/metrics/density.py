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
    """log p(x' | y') in nats; for images log p_F(E(x') | y') in the deterministic
    autoencoder's latent space, so every method is scored by the same density."""
    cfs, flow = context.cfs, _flow(context)
    z = torch.cat([context.encode(x) for x in cfs.x_cf.nan_to_num().split(512)])
    return class_log_prob(flow, z, cfs.y_target, context.num_classes)


@metric("plausibility", higher_is_better=True)
def plausibility(context: EvaluationContext):
    """Share of counterfactuals with log p(x' | y') ≥ τ_{y'}, τ_c the
    ``plausibility_quantile`` of the training log densities of class c."""
    q = context.options.get("plausibility_quantile", 0.5)
    z_train = context.x_train if context.z_train is None else context.z_train
    tau = class_quantiles(_flow(context), z_train, context.y_train, context.num_classes, q)
    return log_density(context) >= tau[context.cfs.y_target]
