"""Density metrics under the evaluation flow: log p(x' | y'), plausibility (PPCEF; Wielopolski
et al. 2024) and the validity-weighted log density that Optuna presets maximize."""

import torch

from flowcf.density import class_log_prob, class_quantiles
from flowcf.errors import UserError
from flowcf.metrics.base import EvaluationContext, metric

__all__ = ["log_density", "plausibility", "validity_weighted_log_density"]


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
    """Share of counterfactuals with log p(x' | y') ≥ τ_{y'}, τ the ``plausibility_quantile``
    of the training log densities by the ``threshold`` rule (:data:`~flowcf.density.THRESHOLDS`):
    ``per_class`` (default) class y''s own points, ``pooled`` every training point (the PPCEF
    authors')."""
    q = context.options.get("plausibility_quantile", 0.5)
    rule = context.options.get("threshold", "per_class")
    z_train = context.x_train if context.z_train is None else context.z_train
    tau = class_quantiles(_flow(context), z_train, context.y_train, context.num_classes, q, rule)
    return log_density(context) >= tau[context.cfs.y_target]


@metric("validity_weighted_log_density", higher_is_better=True, over="all")
@torch.no_grad()
def validity_weighted_log_density(context: EvaluationContext):
    """Log density with invalid counterfactuals scored at a floor, over every factual:
    max(log p(x' | y'), τ₀_{y'}) for a valid counterfactual, τ₀_{y'} for an invalid or missing
    one, where τ₀_c is the ``log_density_floor_quantile`` (default 0.01) of the training log
    densities of class c.

    With one target class its mean is τ₀ + validity × mean over valid counterfactuals of
    max(log p − τ₀, 0): validity times the log density gained above the floor. It is finite even
    when nothing is valid (``log_density`` is then NaN, which Optuna records as a failed trial),
    never rises when a counterfactual turns invalid, and never falls when one gains density, so
    a search cannot buy density with validity or the reverse. Units: nats, as ``log_density``.
    """
    q = context.options.get("log_density_floor_quantile", 0.01)
    z_train = context.x_train if context.z_train is None else context.z_train
    floors = class_quantiles(_flow(context), z_train, context.y_train, context.num_classes, q)
    floor = floors[context.cfs.y_target]
    return torch.where(context.valid, torch.maximum(log_density(context), floor), floor)
