"""A :class:`Setting`: what counterfactual methods search with and what metrics score with."""

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

import torch
from torch import Tensor, nn

from flowcf.counterfactuals import Counterfactuals
from flowcf.data.constraints import Constraints
from flowcf.errors import UserError

__all__ = ["Setting"]


@dataclass
class Setting:
    """One run's classifier, flow, training data and data constraints; for the metrics, also
    the counterfactuals they score.

    Attributes:
        classifier: The classifier to explain, returning logits.
        flow: The class-conditional flow p_F on ``encoder``'s codes (the inputs without one), or
            ``None`` (a search in another space than the flow's, ``latent``).
        x_train, y_train: Training data, for thresholds such as τ.
        num_classes: Number of classes.
        encoder: The deterministic autoencoder whose codes the flow models, or ``None``: the flow
            models the inputs.
        latent: The autoencoder whose latent space a method searches (``encode``, ``decode``),
            or ``None``: the input space.
        z_train: The training data in the flow's space (``x_train`` when ``None``).
        constraints: What counterfactuals may change (tabular data), or ``None``: anything.
        bounds: The range of valid input values (image pixels), or ``None``: unbounded.
        cache: ``cache(name, settings, create) -> payload`` keeps a part a method trains (e.g.
            DiCoFlex's flow) in the artifact store, keyed by the data, classifier and
            ``settings``; ``create() -> (payload, metrics)`` builds it. ``None``: no store.
        x_real, y_real: Real images and their labels (the test split), for ``fid``; ``None``
            for data that are not images.
        cfs: The counterfactuals the metrics score; ``None`` while a method searches.
        options: The ``metrics`` config (e.g. ``plausibility_quantile``).
    """

    classifier: nn.Module
    flow: nn.Module | None
    x_train: Tensor
    y_train: Tensor
    num_classes: int
    encoder: nn.Module | None = None
    latent: nn.Module | None = None
    z_train: Tensor | None = None
    constraints: Constraints | None = None
    bounds: tuple[float, float] | None = None
    cache: Callable[[str, dict, Callable], dict] | None = None
    x_real: Tensor | None = None
    y_real: Tensor | None = None
    cfs: Counterfactuals | None = None
    options: dict = field(default_factory=dict)

    @property
    def train_codes(self) -> Tensor:
        """The training data in the flow's space: ``z_train``, or ``x_train`` without it."""
        return self.x_train if self.z_train is None else self.z_train

    def encode(self, x: Tensor) -> Tensor:
        """Inputs to the flow's space."""
        return x if self.encoder is None else self.encoder.encode(x)

    def require_flow(self, who: str) -> nn.Module:
        """The flow, or a :class:`UserError` saying that ``who`` needs one."""
        if self.flow is None:
            raise UserError(
                f"{who} needs a flow on the space the method searches (method.latent), and this "
                "run's flow models another (the autoencoder's codes, or pixels with space=pixel)"
            )
        return self.flow

    @cached_property
    @torch.no_grad()
    def valid(self) -> Tensor:
        """Whether the classifier assigns each counterfactual to its target, (B,)."""
        cfs = self.cfs
        predicted = self.classifier(cfs.x_cf.nan_to_num()).argmax(dim=1)
        return cfs.found & (predicted == cfs.y_target)
