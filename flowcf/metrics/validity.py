"""Coverage and validity (PPCEF, Wielopolski et al. 2024)."""

import torch

from flowcf.metrics.base import metric
from flowcf.setting import Setting

__all__ = ["coverage", "validity", "validity_changed"]


@metric("coverage", higher_is_better=True, over="all")
def coverage(setting: Setting):
    """Share of factuals for which the method returned a counterfactual."""
    return setting.cfs.found


@metric("validity", higher_is_better=True, over="all")
def validity(setting: Setting):
    """Share of factuals whose counterfactual the classifier assigns to the target class."""
    return setting.valid


@metric("validity_changed", higher_is_better=True, over="returned")
@torch.no_grad()
def validity_changed(setting: Setting):
    """Share of returned counterfactuals the classifier assigns to any class but the factual's:
    the PPCEF authors' validity (their code compares with the factual's label, not the target).
    With two classes it is ``validity``; with more it also counts a counterfactual that left the
    factual's class for another than the target."""
    cfs = setting.cfs
    return cfs.found & (setting.classifier(cfs.x_cf.nan_to_num()).argmax(dim=1) != cfs.y)
