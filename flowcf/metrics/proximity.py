"""Distances between factual and counterfactual, in the model's (scaled) input space, and
sparsity."""

import torch

from flowcf.data.constraints import TOLERANCE
from flowcf.losses import median_absolute_deviation
from flowcf.metrics.base import metric
from flowcf.setting import Setting

__all__ = ["l1", "l2", "linf", "mad", "sparsity"]


def _difference(setting: Setting):
    return (setting.cfs.x_cf - setting.cfs.x).flatten(1)


@metric("l1", higher_is_better=False)
def l1(setting: Setting):
    """Σ_j |x_j − x'_j|."""
    return _difference(setting).abs().sum(dim=1)


@metric("l2", higher_is_better=False)
def l2(setting: Setting):
    """‖x − x'‖₂."""
    return _difference(setting).norm(dim=1)


@metric("linf", higher_is_better=False)
def linf(setting: Setting):
    """max_j |x_j − x'_j|."""
    return _difference(setting).abs().amax(dim=1)


@metric("mad", higher_is_better=False)
def mad(setting: Setting):
    """Σ_j |x_j − x'_j| / MAD_j, MAD over the training data (Wachter et al., 2017); a column
    whose MAD is zero (a one-hot column of a common category, say) counts unweighted; the
    training data are read into memory whole (streamed images too) for the median."""
    scale = median_absolute_deviation(setting.x_train[:].flatten(1))
    scale = torch.where(scale > TOLERANCE, scale, torch.ones_like(scale))
    return (_difference(setting).abs() / scale).sum(dim=1)


@metric("sparsity", higher_is_better=False)
def sparsity(setting: Setting):
    """L0: the number of changed features (original features for tabular data, so a changed
    category counts once)."""
    cfs, constraints = setting.cfs, setting.constraints
    if constraints is None:
        return (_difference(setting).abs() > TOLERANCE).sum(dim=1)
    return constraints.changed(cfs.x, cfs.x_cf).sum(dim=1)
