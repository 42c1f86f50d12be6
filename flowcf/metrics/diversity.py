"""Diversity of several counterfactuals per factual (DiCoFlex)."""

import torch

from flowcf.metrics.base import metric
from flowcf.setting import Setting

__all__ = ["distinct_valid", "diversity"]


@metric("diversity", higher_is_better=True)
def diversity(setting: Setting):
    """Mean pairwise L2 distance among a factual's counterfactuals; NaN with fewer than two
    (methods that give one counterfactual have no diversity to report)."""
    ranked = setting.cfs.ranked.flatten(2)
    kept = ranked.isfinite().all(dim=2)
    pairs = kept[:, :, None] & kept[:, None, :]
    pairs &= ~torch.eye(pairs.shape[1], dtype=torch.bool, device=pairs.device)
    distances = torch.cdist(ranked.nan_to_num(), ranked.nan_to_num()) * pairs
    return distances.sum(dim=(1, 2)) / pairs.sum(dim=(1, 2))


@metric("distinct_valid", higher_is_better=True, over="all")
def distinct_valid(setting: Setting):
    """The number of distinct valid counterfactuals per factual (0 where none was found)."""
    return setting.cfs.ranked.flatten(2).isfinite().all(dim=2).sum(dim=1) * setting.valid
