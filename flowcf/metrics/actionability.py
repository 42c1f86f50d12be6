"""Actionability: whether a counterfactual only asks for changes the user can make."""

import torch

from flowcf.metrics.base import metric
from flowcf.setting import Setting

__all__ = ["actionability"]


@metric("actionability", higher_is_better=True)
def actionability(setting: Setting):
    """Share of counterfactuals that break none of the data's
    :class:`~flowcf.data.constraints.Constraints` (``satisfied``): every numeric and ordinal
    feature inside its range, integers and ordinals whole, each categorical one valid one-hot,
    immutable features unchanged, monotone features moved only their way. All count without
    constraints (toy data, images)."""
    cfs, constraints = setting.cfs, setting.constraints
    if constraints is None:
        return torch.ones_like(cfs.found)
    return constraints.satisfied(cfs.x, cfs.x_cf)
