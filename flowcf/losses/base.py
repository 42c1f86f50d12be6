"""Registered loss terms that gradient methods compose from config.

Every term maps a batch of :class:`Candidate` counterfactuals to per-sample values of shape (B,).
A method's YAML lists terms with weights::

    losses:
      distance: {name: l2, weight: 1}
      decision: {name: margin, eps: 0.02, weight: 100}
      plausibility: {name: nll_hinge, quantile: 0.5, weight: 100}

Hinge terms are constraints: a sample whose hinge terms are all zero, and which the classifier
assigns to its target, is finished.

References:
    | Probabilistically Plausible Counterfactual Explanations with Normalizing Flows
    | (Wielopolski et al., 2024) https://arxiv.org/abs/2405.17640

    | Counterfactual Explanations without Opening the Black Box (Wachter et al., 2017)
    | https://arxiv.org/abs/1711.00399
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated

from torch import Tensor

from flowcf.registry import Registry
from flowcf.rules import Node, NonNegative, one_of, rule_of
from flowcf.setting import Setting

__all__ = ["LOSSES", "Candidate", "LossTerm", "Terms", "build_terms", "check_terms"]


@dataclass
class Candidate:
    """A batch of candidate counterfactuals during a search.

    Attributes:
        x: The factuals, in the input space.
        x_cf: The candidates, in the input space.
        z: The factuals' latent codes (``x`` itself for a search in the input space).
        z_cf: The variable searched over (``x_cf`` itself in the input space).
        y_target: Target classes, (B,).
    """

    x: Tensor
    x_cf: Tensor
    z: Tensor
    z_cf: Tensor
    y_target: Tensor

    def difference(self, space: str) -> Tensor:
        """Candidate minus factual in the ``input`` or ``latent`` space, flattened to (B, D)."""
        pair = (self.x_cf, self.x) if space == "input" else (self.z_cf, self.z)
        return (pair[0] - pair[1]).flatten(1)


class LossTerm:
    """A per-sample loss term; ``hinge`` terms are constraints that reach zero when met."""

    hinge = False

    def __call__(self, c: Candidate) -> Tensor:
        raise NotImplementedError


LOSSES: Registry = Registry("loss")


def check_terms(key: str, specs: Mapping) -> None:
    """Checks a ``losses`` config (node ``key``): each term names a registered loss, has a
    weight ≥ 0 and options its loss takes (:meth:`~flowcf.registry.Registry.check`), even a
    term switched off."""
    for term, spec in specs.items():
        options = dict(spec)
        one_of(*LOSSES).check(f"{key}.{term}.name", options.pop("name", None))
        rule_of(NonNegative).check(f"{key}.{term}.weight", options.pop("weight", 1.0))
        LOSSES.check(spec["name"], f"{key}.{term}", options, skip=1)


#: A method's ``losses`` option: loss terms by key, each ``{name, weight, **options}``.
Terms = Annotated[dict, Node(check_terms)]


def build_terms(setting: Setting, specs: dict) -> tuple[dict[str, LossTerm], dict[str, float]]:
    """Builds the terms of a method's ``losses`` config (checked by :func:`check_terms`) and
    returns them with their weights.

    A term with weight 0 is switched off: it is not built, so it costs nothing.
    """
    check_terms("losses", specs)
    terms, weights = {}, {}
    for key, spec in specs.items():
        params = dict(spec)
        weight = float(params.pop("weight", 1.0))
        name = params.pop("name")
        if weight > 0:
            terms[key] = LOSSES.build(name, setting, **params)
            weights[key] = weight
    return terms, weights
