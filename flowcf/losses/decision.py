"""Decision terms: how far the classifier is from assigning a candidate to its target."""

import math
from typing import Annotated

import torch
from torch import Tensor
from torch.nn.functional import cross_entropy

from flowcf.losses.base import LOSSES, Candidate, LossTerm
from flowcf.rules import NonNegative, one_of
from flowcf.setting import Setting


def _target_log_proba(setting: Setting, c: Candidate) -> tuple[Tensor, Tensor]:
    """Log-probability of the target class and the largest log-probability among the others."""
    log_p = setting.classifier(c.x_cf).log_softmax(dim=1)
    index = c.y_target[:, None]
    target = log_p.gather(1, index).squeeze(1)
    others = log_p.scatter(1, index, float("-inf")).amax(dim=1)
    return target, others


def _half(others: Tensor) -> Tensor:
    return torch.full_like(others, math.log(0.5))


# log m, the bound the target's probability must exceed by ε, from the others' best log p_k
_BOUNDS = {"paper": _half, "margin": lambda others: others}


@LOSSES.register("margin")
class Margin(LossTerm):
    """The decision hinge ``max(m + ε − p_{y'}, 0)``: zero once the target's probability exceeds
    the bound m by the margin ε.

    ``form="paper"``: m = 0.5 for any number of classes, PLACE's eq. 2.
    ``form="margin"``: m = max_{k≠y'} p_k, the best other class (0.5 for two classes), PPCEF's
    L_dec; on many classes it is met much earlier: the target need only beat the runner-up.

    ``scale="probability"``: the hinge as written; λ_dec weighs a probability gap in [0, 1 + ε].
    ``scale="log"``: ``max(log(m + ε) − log p_{y'}, 0)``, zero exactly where the original is,
    but its gradient does not vanish where the classifier is sure of another class (p_{y'} ≈ 0,
    where the probability's gradient is ≈ 0 too); λ_dec then weighs nats, the unit of the
    plausibility term −log p(z' | y'), so λ_dec / λ_plaus trades classifier nats for density nats.
    """

    hinge = True

    def __init__(
        self,
        setting: Setting,
        eps: NonNegative = 0.05,
        scale: Annotated[str, one_of("probability", "log")] = "probability",
        form: Annotated[str, one_of(*_BOUNDS)] = "margin",
    ):
        self.setting, self.eps, self.scale, self.bound = setting, eps, scale, _BOUNDS[form]

    def __call__(self, c):
        target, others = _target_log_proba(self.setting, c)
        others = _half(others) if self.setting.num_classes == 2 else self.bound(others)
        if self.scale == "log":
            bound = torch.logaddexp(others, torch.tensor(self.eps).log())  # ε = 0: log 0 = −∞
            return (bound - target).clamp(min=0)
        return (others.exp() + self.eps - target.exp()).clamp(min=0)


@LOSSES.register("ce")
class CrossEntropy(LossTerm):
    """Cross-entropy of the classifier's logits against the target class."""

    def __init__(self, setting: Setting):
        self.setting = setting

    def __call__(self, c):
        return cross_entropy(self.setting.classifier(c.x_cf), c.y_target, reduction="none")


@LOSSES.register("squared")
class Squared(LossTerm):
    """Wachter's prediction loss ``(f(x') − 1)²`` with f the target-class probability."""

    def __init__(self, setting: Setting):
        self.setting = setting

    def __call__(self, c):
        target, _ = _target_log_proba(self.setting, c)
        return (1 - target.exp()) ** 2
