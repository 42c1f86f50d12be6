"""Distance terms between factual and candidate."""

from typing import Annotated

from torch import Tensor

from flowcf.losses.base import LOSSES, LossTerm
from flowcf.rules import one_of
from flowcf.setting import Setting

__all__ = ["median_absolute_deviation"]


class Distance(LossTerm):
    """A distance between factual and candidate in the ``input`` or ``latent`` space."""

    def __init__(
        self, setting: Setting, space: Annotated[str, one_of("input", "latent")] = "input"
    ):
        self.space = space


@LOSSES.register("l1")
class L1(Distance):
    """Σ_j |x_j − x'_j|."""

    def __call__(self, c):
        return c.difference(self.space).abs().sum(dim=1)


@LOSSES.register("l2")
class L2(Distance):
    """‖x − x'‖₂ (not squared, as in PPCEF and PLACE)."""

    def __call__(self, c):
        return c.difference(self.space).norm(dim=1)


def median_absolute_deviation(x: Tensor) -> Tensor:
    """MAD_j, the median absolute deviation of each feature of ``x`` (N, D), floored at 1e-6 so
    constant features cannot divide by zero."""
    return (x - x.median(dim=0).values).abs().median(dim=0).values.clamp(min=1e-6)


@LOSSES.register("mad")
class MAD(LossTerm):
    """Wachter's Σ_j |x_j − x'_j| / MAD_j over the training data's MAD."""

    def __init__(self, setting: Setting):
        self.mad = median_absolute_deviation(setting.x_train)

    def __call__(self, c):
        return ((c.x_cf - c.x).abs() / self.mad).flatten(1).sum(dim=1)
