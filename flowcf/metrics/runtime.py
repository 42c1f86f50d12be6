"""Wall-clock seconds: ``time`` is the search (DiCoFlex: the sampling), ``fit_time`` the fitting
of the method's own models before it (CLARITY's ensemble, DiCoFlex's flow; counted when a stored
one was loaded), ``total_time`` both, as PLACE's Tables 1-2 charge CLARITY for retraining.
Shared models (classifier, autoencoders, the flow p_F) are not counted."""

from flowcf.metrics.base import metric
from flowcf.setting import Setting

__all__ = ["fit_time", "time", "time_per_factual", "total_time"]


@metric("time", higher_is_better=False)
def time(setting: Setting):
    """Seconds of the search over the whole batch of factuals."""
    return setting.cfs.seconds


@metric("fit_time", higher_is_better=False)
def fit_time(setting: Setting):
    """Seconds the method spent fitting its own models."""
    return setting.cfs.fit_seconds


@metric("total_time", higher_is_better=False)
def total_time(setting: Setting):
    """Search and fitting: :func:`time` + :func:`fit_time`."""
    return time(setting) + fit_time(setting)


@metric("time_per_factual", higher_is_better=False)
def time_per_factual(setting: Setting):
    """Seconds of the search and fitting per factual."""
    return total_time(setting) / max(len(setting.cfs.x), 1)
