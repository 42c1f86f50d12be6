"""Coverage and validity (PPCEF, Wielopolski et al. 2024)."""

from flowcf.metrics.base import EvaluationContext, metric

__all__ = ["coverage", "validity"]


@metric("coverage", higher_is_better=True, over="all")
def coverage(context: EvaluationContext):
    """Share of factuals for which the method returned a counterfactual."""
    return context.cfs.found


@metric("validity", higher_is_better=True, over="all")
def validity(context: EvaluationContext):
    """Share of factuals whose counterfactual the classifier assigns to the target class."""
    return context.valid
