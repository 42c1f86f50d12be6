"""Distances between factual and counterfactual, in the model's (scaled) input space, and
sparsity."""

import torch

from flowcf.data.constraints import TOLERANCE
from flowcf.losses import median_absolute_deviation
from flowcf.metrics.base import EvaluationContext, metric

__all__ = ["l1", "l2", "linf", "mad", "sparsity"]


def _difference(context: EvaluationContext):
    return (context.cfs.x_cf - context.cfs.x).flatten(1)


@metric("l1", higher_is_better=False)
def l1(context: EvaluationContext):
    """Σ_j |x_j − x'_j|."""
    return _difference(context).abs().sum(dim=1)


@metric("l2", higher_is_better=False)
def l2(context: EvaluationContext):
    """‖x − x'‖₂."""
    return _difference(context).norm(dim=1)


@metric("linf", higher_is_better=False)
def linf(context: EvaluationContext):
    """max_j |x_j − x'_j|."""
    return _difference(context).abs().amax(dim=1)


@metric("mad", higher_is_better=False)
def mad(context: EvaluationContext):
    """Σ_j |x_j − x'_j| / MAD_j, MAD over the training data (Wachter et al., 2017); a column
    whose MAD is zero (a one-hot column of a common category, say) counts unweighted; the
    training data are read into memory whole (streamed images too) for the median."""
    scale = median_absolute_deviation(context.x_train[:].flatten(1))
    scale = torch.where(scale > TOLERANCE, scale, torch.ones_like(scale))
    return (_difference(context).abs() / scale).sum(dim=1)


@metric("sparsity", higher_is_better=False)
def sparsity(context: EvaluationContext):
    """L0: the number of changed features (original features for tabular data, so a changed
    category counts once)."""
    cfs, constraints = context.cfs, context.constraints
    if constraints is None:
        return (_difference(context).abs() > TOLERANCE).sum(dim=1)
    return constraints.changed(cfs.x, cfs.x_cf).sum(dim=1)
