"""PPCEF: probabilistically plausible counterfactuals with a conditional normalizing flow.

x' = x + δ minimises ‖δ‖₂ + α·(L_dec(x', y') + max(τ − log p(x' | y'), 0)) with Adam; the
terms and weights come from config (``conf/method/ppcef.yaml``: α = 100, lr 5e-3, ε = 0.02 as
in the authors' code; τ = the median training log density of the target class's own points,
where the authors take one median over the whole training fold: ``threshold: pooled`` in the
``nll_hinge`` term, as ``experiment=ppcef_benchmark`` sets).

References:
    | Probabilistically Plausible Counterfactual Explanations with Normalizing Flows
    | (Wielopolski, Furman, Stefanowski, Zięba, ECAI 2024) https://arxiv.org/abs/2405.17640
"""

from flowcf.methods.base import METHODS, GradientSearch

__all__ = ["PPCEF"]


@METHODS.register("ppcef")
class PPCEF(GradientSearch):
    """Gradient search in the input space with distance, decision and plausibility terms.

    Examples:
        ``METHODS.build("ppcef", models, losses=cfg.losses, lr=5e-3, max_steps=1000)
        .explain(x, y, y_target)`` with ``models`` a :class:`~flowcf.setting.Setting`.
    """
