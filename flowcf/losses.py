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

import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated

import torch
from torch import Tensor, nn
from torch.nn.functional import cross_entropy

from flowcf.data.constraints import Constraints
from flowcf.density import THRESHOLDS, class_log_prob, class_quantiles
from flowcf.errors import UserError
from flowcf.models.lpips import NETS, find_backbone, load_lpips
from flowcf.registry import Registry
from flowcf.rules import Fraction, Node, NonNegative, one_of, rule_of

__all__ = [
    "LOSSES",
    "Candidate",
    "LossTerm",
    "Models",
    "Terms",
    "build_terms",
    "check_terms",
    "median_absolute_deviation",
]

log = logging.getLogger(__name__)


@dataclass
class Models:
    """What loss terms and methods compute with.

    Attributes:
        classifier: The classifier to explain, returning logits.
        flow: The class-conditional flow on the space the method searches (the autoencoder's
            latent codes, or the inputs themselves without an autoencoder), or ``None``.
        x_train, y_train: Training data.
        num_classes: Number of classes.
        autoencoder: The autoencoder whose latent space a method searches (``encode``,
            ``decode``), or ``None`` for methods that search the input space.
        z_train: The training data in the flow's space (``x_train`` without an autoencoder).
        constraints: What counterfactuals may change (tabular data), or ``None``: anything.
        bounds: The range of valid input values (image pixels), or ``None``: unbounded.
        cache: ``cache(name, settings, create) -> payload`` keeps a part a method trains (e.g.
            DiCoFlex's flow) in the artifact store, keyed by the data, classifier and
            ``settings``; ``create() -> (payload, metrics)`` builds it. ``None``: no store.
    """

    classifier: nn.Module
    flow: nn.Module | None
    x_train: Tensor
    y_train: Tensor
    num_classes: int
    autoencoder: nn.Module | None = None
    z_train: Tensor | None = None
    constraints: Constraints | None = None
    bounds: tuple[float, float] | None = None
    cache: Callable[[str, dict, Callable], dict] | None = None

    def __post_init__(self):
        if self.z_train is None:
            self.z_train = self.x_train

    def require_flow(self, who: str) -> nn.Module:
        """The flow, or a :class:`UserError` saying that ``who`` needs one."""
        if self.flow is None:
            raise UserError(
                f"{who} needs a flow on the space the method searches (method.latent), and this "
                "run's flow models another (the autoencoder's codes, or pixels with space=pixel)"
            )
        return self.flow


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


def _target_log_proba(models: Models, c: Candidate) -> tuple[Tensor, Tensor]:
    """Log-probability of the target class and the largest log-probability among the others."""
    log_p = models.classifier(c.x_cf).log_softmax(dim=1)
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
        models: Models,
        eps: NonNegative = 0.05,
        scale: Annotated[str, one_of("probability", "log")] = "probability",
        form: Annotated[str, one_of(*_BOUNDS)] = "margin",
    ):
        self.models, self.eps, self.scale, self.bound = models, eps, scale, _BOUNDS[form]

    def __call__(self, c):
        target, others = _target_log_proba(self.models, c)
        others = _half(others) if self.models.num_classes == 2 else self.bound(others)
        if self.scale == "log":
            bound = torch.logaddexp(others, torch.tensor(self.eps).log())  # ε = 0: log 0 = −∞
            return (bound - target).clamp(min=0)
        return (others.exp() + self.eps - target.exp()).clamp(min=0)


@LOSSES.register("ce")
class CrossEntropy(LossTerm):
    """Cross-entropy of the classifier's logits against the target class."""

    def __init__(self, models: Models):
        self.models = models

    def __call__(self, c):
        return cross_entropy(self.models.classifier(c.x_cf), c.y_target, reduction="none")


@LOSSES.register("squared")
class Squared(LossTerm):
    """Wachter's prediction loss ``(f(x') − 1)²`` with f the target-class probability."""

    def __init__(self, models: Models):
        self.models = models

    def __call__(self, c):
        target, _ = _target_log_proba(self.models, c)
        return (1 - target.exp()) ** 2


class Distance(LossTerm):
    """A distance between factual and candidate in the ``input`` or ``latent`` space."""

    def __init__(self, models: Models, space: Annotated[str, one_of("input", "latent")] = "input"):
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

    def __init__(self, models: Models):
        self.mad = median_absolute_deviation(models.x_train)

    def __call__(self, c):
        return ((c.x_cf - c.x).abs() / self.mad).flatten(1).sum(dim=1)


@LOSSES.register("nll")
class NLL(LossTerm):
    """−log p(z' | y') under the flow, evaluated on the variable searched over: PLACE's latent
    code, or the input itself for input-space methods such as PPCEF."""

    def __init__(self, models: Models):
        self.flow = models.require_flow("the nll loss")
        self.num_classes = models.num_classes

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
        models: Models,
        quantile: Fraction = 0.5,
        threshold: Annotated[str, one_of(*THRESHOLDS)] = "per_class",
    ):
        super().__init__(models)
        self.tau = class_quantiles(
            self.flow, models.z_train, models.y_train, models.num_classes, quantile, threshold
        )

    def __call__(self, c):
        return (self.tau[c.y_target] + super().__call__(c)).clamp(min=0)


@LOSSES.register("lpips")
class Perceptual(LossTerm):
    """PLACE's perceptual term LPIPS(x, x') between factual and candidate images (PLACE, eq. 5).

    ``net``: ``alex`` or ``vgg``; ``backbone``: a torchvision state dict of that net, ``None``
    for the pretrained weights :func:`flowcf.models.lpips.find_backbone` finds, or ``"random"``
    for LPIPS's linear layers over a random (seeded) AlexNet, a feature distance that is not
    LPIPS.
    """

    def __init__(
        self,
        models: Models,
        backbone: str | None = None,
        net: Annotated[str, one_of(*NETS)] = "alex",
    ):
        if backbone == "random":
            log.warning("the lpips loss uses a random AlexNet backbone: it is not LPIPS")
            path, net = None, "alex"
        else:
            path = str(find_backbone(backbone, net))
        self.distance = load_lpips(path, next(models.classifier.parameters()).device, net)

    def __call__(self, c):
        return self.distance(c.x, c.x_cf)


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


def build_terms(models: Models, specs: dict) -> tuple[dict[str, LossTerm], dict[str, float]]:
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
            terms[key] = LOSSES.build(name, models, **params)
            weights[key] = weight
    return terms, weights
