"""PPCEF: probabilistically plausible counterfactuals with a conditional normalizing flow.

x' = x + δ minimises ‖δ‖₂ + α·(L_dec(x', y') + max(τ − log p(x' | y'), 0)) with Adam; the
terms and weights come from config (``conf/method/ppcef.yaml``: α = 100, lr 5e-3, ε = 0.02,
τ = median training log density of the target class, as in the authors' code).

References:
    | Probabilistically Plausible Counterfactual Explanations with Normalizing Flows
    | (Wielopolski, Furman, Stefanowski, Zięba, ECAI 2024) https://arxiv.org/abs/2405.17640
"""

from flowcf.methods.base import METHODS, GradientSearch

__all__ = ["PPCEF"]


@METHODS.register("ppcef")
class PPCEF(GradientSearch):
    """Gradient search in the input space with distance, decision and plausibility terms.

    Example:
        ``METHODS.build("ppcef", setting, losses=cfg.losses, lr=5e-3, max_steps=1000)
        .explain(x, y, y_target)`` with ``setting`` a :class:`~flowcf.setting.Setting`.
    """
