"""Density metrics under the evaluation flow: log p(x' | y'), plausibility (PPCEF; Wielopolski
et al. 2024) and the validity-weighted log density that Optuna presets maximize."""

import torch

from flowcf.density import class_log_prob, class_quantiles
from flowcf.errors import UserError
from flowcf.metrics.base import metric
from flowcf.setting import Setting

__all__ = ["log_density", "plausibility", "validity_weighted_log_density"]


def _flow(setting: Setting):
    if setting.flow is None:
        raise UserError("log_density and plausibility need an evaluation flow")
    return setting.flow


@metric("log_density", higher_is_better=True)
@torch.no_grad()
def log_density(setting: Setting):
    """log p(x' | y') in nats; for images log p_F(E(x') | y') in the deterministic
    autoencoder's latent space, so every method is scored by the same density."""
    cfs, flow = setting.cfs, _flow(setting)
    z = torch.cat([setting.encode(x) for x in cfs.x_cf.nan_to_num().split(512)])
    return class_log_prob(flow, z, cfs.y_target, setting.num_classes)


@metric("plausibility", higher_is_better=True)
def plausibility(setting: Setting):
    """Share of counterfactuals with log p(x' | y') ≥ τ_{y'}, τ the ``plausibility_quantile``
    of the training log densities by the ``threshold`` rule (:data:`~flowcf.density.THRESHOLDS`):
    ``per_class`` (default) class y''s own points, ``pooled`` every training point (the PPCEF
    authors')."""
    q = setting.options.get("plausibility_quantile", 0.5)
    rule = setting.options.get("threshold", "per_class")
    tau = class_quantiles(
        _flow(setting), setting.train_codes, setting.y_train, setting.num_classes, q, rule
    )
    return log_density(setting) >= tau[setting.cfs.y_target]


@metric("validity_weighted_log_density", higher_is_better=True, over="all")
@torch.no_grad()
def validity_weighted_log_density(setting: Setting):
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
    q = setting.options.get("log_density_floor_quantile", 0.01)
    floors = class_quantiles(
        _flow(setting), setting.train_codes, setting.y_train, setting.num_classes, q
    )
    floor = floors[setting.cfs.y_target]
    return torch.where(setting.valid, torch.maximum(log_density(setting), floor), floor)
