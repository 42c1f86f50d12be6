"""Plausibility terms: the candidate's density under the class-conditional flow."""

from typing import Annotated

from flowcf.density import THRESHOLDS, class_log_prob, class_quantiles
from flowcf.losses.base import LOSSES, LossTerm
from flowcf.rules import Fraction, one_of
from flowcf.setting import Setting


@LOSSES.register("nll")
class NLL(LossTerm):
    """−log p(z' | y') under the flow, evaluated on the variable searched over: PLACE's latent
    code, or the input itself for input-space methods such as PPCEF."""

    def __init__(self, setting: Setting):
        self.flow = setting.require_flow("the nll loss")
        self.num_classes = setting.num_classes

    def __call__(self, c):
        return -class_log_prob(self.flow, c.z_cf, c.y_target, self.num_classes)


@LOSSES.register("nll_hinge")
class NLLHinge(NLL):
    """PPCEF's plausibility hinge ``max(τ_{y'} − log p(x' | y'), 0)``, τ the ``quantile`` of
    the training log densities by the ``threshold`` rule (:data:`~flowcf.density.THRESHOLDS`):
    ``per_class`` (default) takes class y''s own points, ``pooled`` one quantile over every
    training point, as the PPCEF authors' code does (the median)."""

    hinge = True

    def __init__(
        self,
        setting: Setting,
        quantile: Fraction = 0.5,
        threshold: Annotated[str, one_of(*THRESHOLDS)] = "per_class",
    ):
        super().__init__(setting)
        self.tau = class_quantiles(
            self.flow,
            setting.train_codes,
            setting.y_train,
            setting.num_classes,
            quantile,
            threshold,
        )

    def __call__(self, c):
        return (self.tau[c.y_target] + super().__call__(c)).clamp(min=0)
