"""Coverage and validity (DESIGN §6)."""

from flowcf.metrics.base import metric
from flowcf.setting import Setting

__all__ = ["coverage", "validity"]


@metric("coverage", higher_is_better=True, over="all")
def coverage(setting: Setting):
    """Share of factuals for which the method returned a counterfactual."""
    return setting.cfs.found


@metric("validity", higher_is_better=True, over="all")
def validity(setting: Setting):
    """Share of factuals whose counterfactual the classifier assigns to the target class."""
    return setting.valid
