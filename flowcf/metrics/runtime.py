"""Wall-clock time to produce the counterfactuals."""

from flowcf.metrics.base import EvaluationContext, metric

__all__ = ["time", "time_per_factual"]


@metric("time", higher_is_better=False)
def time(context: EvaluationContext):
    """Seconds for the whole batch of factuals."""
    return context.cfs.seconds


@metric("time_per_factual", higher_is_better=False)
def time_per_factual(context: EvaluationContext):
    """Seconds per factual."""
    return context.cfs.seconds / max(len(context.cfs.x), 1)
