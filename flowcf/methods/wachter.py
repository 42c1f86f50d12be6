"""Wachter et al.'s counterfactuals: λ·(f(x') − 1)² + Σ_j |x_j − x'_j| / MAD_j.

λ starts at the decision term's weight and is multiplied by ``lambda_growth`` every
``lambda_every`` steps for each factual whose counterfactual is not yet valid, so λ grows until
it is, one factual at a time (all in one batch).

References:
    | Counterfactual Explanations without Opening the Black Box: Automated Decisions and the
    | GDPR (Wachter, Mittelstadt, Russell, 2017) https://arxiv.org/abs/1711.00399
"""

from typing import Annotated

from torch import Tensor

from flowcf.errors import UserError
from flowcf.losses import Terms
from flowcf.methods.base import METHODS, GradientSearch
from flowcf.rules import Count, Positive, at_least
from flowcf.setting import Setting

__all__ = ["Wachter"]


@METHODS.register("wachter")
class Wachter(GradientSearch):
    """Gradient search with a per-factual λ on the ``decision`` term, grown until valid."""

    def __init__(
        self,
        setting: Setting,
        *,
        losses: Terms,
        lr: Positive,
        max_steps: Count,
        lambda_growth: Annotated[float, at_least(1)] = 2.0,
        lambda_every: Count = 100,
        progress: bool = True,
    ):
        super().__init__(setting, losses=losses, lr=lr, max_steps=max_steps, progress=progress)
        if "decision" not in self.terms:
            raise UserError("wachter needs a 'decision' loss term for λ to weight")
        self.lambda_growth, self.lambda_every = lambda_growth, lambda_every

    def schedule(self, step: int, weights: dict[str, Tensor]) -> None:
        if (step + 1) % self.lambda_every == 0:
            weights["decision"] *= self.lambda_growth
