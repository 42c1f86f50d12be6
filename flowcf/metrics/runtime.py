"""Wall-clock time to produce the counterfactuals: the search plus the fitting of the method's
own models (CLARITY's ensemble, DiCoFlex's flow), as PLACE's Tables 1-2 charge CLARITY for
retraining. Shared models (classifier, autoencoders, the flow p_F) are not counted."""

from flowcf.metrics.base import metric
from flowcf.setting import Setting

__all__ = ["time", "time_per_factual"]


@metric("time", higher_is_better=False)
def time(setting: Setting):
    """Seconds for the whole batch of factuals."""
    return setting.cfs.seconds + setting.cfs.fit_seconds


@metric("time_per_factual", higher_is_better=False)
def time_per_factual(setting: Setting):
    """Seconds per factual."""
    return time(setting) / max(len(setting.cfs.x), 1)
