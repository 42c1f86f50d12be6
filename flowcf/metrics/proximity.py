"""Distances between factual and counterfactual, in the model's (scaled) input space."""

from flowcf.metrics.base import EvaluationContext, metric

__all__ = ["l1", "l2", "linf"]


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
