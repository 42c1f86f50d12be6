"""Actionability: whether a counterfactual only asks for changes the user can make."""

import torch

from flowcf.data.constraints import TOLERANCE
from flowcf.metrics.base import EvaluationContext, metric

__all__ = ["actionability"]


@metric("actionability", higher_is_better=True)
def actionability(context: EvaluationContext):
    """Share of counterfactuals that change no immutable feature and move monotone features only
    their way (the data's :class:`~flowcf.data.constraints.Constraints`; all without)."""
    cfs, constraints = context.cfs, context.constraints
    if constraints is None:
        return torch.ones_like(cfs.found)
    projected = constraints.project(cfs.x, cfs.x_cf)
    return ((projected - cfs.x_cf).abs() <= TOLERANCE).all(dim=1)
