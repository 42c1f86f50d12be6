"""Wall-clock seconds: ``time`` is the search (DiCoFlex: the sampling), ``fit_time`` the fitting
of the method's own models before it (CLARITY's ensemble, DiCoFlex's flow; counted when a stored
one was loaded), ``total_time`` both, as PLACE's Tables 1-2 charge CLARITY for retraining.
Shared models (classifier, autoencoders, the flow p_F) are not counted."""

from flowcf.metrics.base import EvaluationContext, metric

__all__ = ["fit_time", "time", "time_per_factual", "total_time"]


@metric("time", higher_is_better=False)
def time(context: EvaluationContext):
    """Seconds of the search over the whole batch of factuals."""
    return context.cfs.seconds


@metric("fit_time", higher_is_better=False)
def fit_time(context: EvaluationContext):
    """Seconds the method spent fitting its own models."""
    return context.cfs.fit_seconds


@metric("total_time", higher_is_better=False)
def total_time(context: EvaluationContext):
    """Search and fitting: :func:`time` + :func:`fit_time`."""
    return time(context) + fit_time(context)


@metric("time_per_factual", higher_is_better=False)
def time_per_factual(context: EvaluationContext):
    """Seconds of the search and fitting per factual."""
    return total_time(context) / max(len(context.cfs.x), 1)
