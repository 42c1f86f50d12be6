r"""Glow for vectors: steps of ActNorm, an LU-parametrised invertible linear map (the dense
form of Glow's invertible 1×1 convolution) and an affine coupling, optionally class-conditional.
ActNorm and the linear map act on dimension 1 of any input, so on images (B, C, H, W) they are
Glow's per-channel ActNorm and 1×1 convolution (see :mod:`flowcf.flows.images`).

The linear map mixes all features before each coupling, so, unlike RealNVP, no fixed split of
the features is privileged. ActNorm and the linear map are unconditional; the couplings take the
context (or, with ``base="plugen"``, the base does).

References:
    | Glow: Generative Flow with Invertible 1x1 Convolutions (Kingma & Dhariwal, 2018)
    | https://arxiv.org/abs/1807.03039
"""

from collections.abc import Iterable
from functools import partial
from typing import Any

import torch
from torch import Tensor, nn

from flowcf.flows import FLOWS
from flowcf.flows.base import Flow, Transform, build_flow
from flowcf.flows.coupling import MLP, AffineCoupling, alternating_masks
from flowcf.registry import forwards
from flowcf.rules import Count

__all__ = ["ActNorm", "LULinear", "glow", "glow_steps"]


def positions(x: Tensor) -> int:
    """How many times a per-feature map acts on each sample: 1 for vectors, :math:`H W` for
    images (the feature dimension is 1)."""
    return x[0, 0].numel()


def per_feature(parameter: Tensor, x: Tensor) -> Tensor:
    """``parameter`` of shape (D,) shaped to broadcast over dimension 1 of ``x``."""
    return parameter[(..., *[None] * (x.dim() - 2))]


class ActNorm(Transform):
    r"""A per-feature (per-channel for images) affine map :math:`y = (x + b) \odot \exp(s)`
    whose parameters are set from the first training batch so that its outputs have zero mean
    and unit variance (data-dependent initialisation); afterwards they are ordinary parameters.

    Arguments:
        dim: The number of features (channels) :math:`D`.
        eps: Added to the batch standard deviation at initialisation.
    """

    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.shift = nn.Parameter(torch.zeros(dim))
        self.log_scale = nn.Parameter(torch.zeros(dim))
        self.register_buffer("initialized", torch.tensor(False))

    @torch.no_grad()
    def _initialize(self, x: Tensor) -> None:
        features = x.movedim(1, -1).reshape(-1, x.shape[1])
        self.shift.copy_(-features.mean(0))
        self.log_scale.copy_(-(features.std(0, correction=0) + self.eps).log())
        self.initialized.fill_(True)

    def forward(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        if self.training and not self.initialized:
            self._initialize(x)
        y = (x + per_feature(self.shift, x)) * per_feature(self.log_scale, x).exp()
        return y, (self.log_scale.sum() * positions(x)).expand(x.shape[0])

    def inverse(self, y: Tensor, context: Tensor | None = None) -> Tensor:
        return y * per_feature(-self.log_scale, y).exp() - per_feature(self.shift, y)


class LULinear(Transform):
    r"""An invertible linear map :math:`y = x W^\top` with :math:`W = P L U` in LU form.

    :math:`P` is a fixed permutation, :math:`L` is unit lower triangular and :math:`U` upper
    triangular with diagonal :math:`\mathrm{sign}(u) \exp(\log |u|)`, so
    :math:`\log |\det W| = \sum \log |u|` costs :math:`O(D)`. It starts at a random rotation.
    On images it mixes the channels at every pixel: Glow's invertible 1×1 convolution.

    Arguments:
        dim: The number of features :math:`D`.
    """

    def __init__(self, dim: int):
        super().__init__()
        rotation, _ = torch.linalg.qr(torch.randn(dim, dim))
        permutation, lower, upper = torch.linalg.lu(rotation)
        diagonal = upper.diagonal()
        self.register_buffer("permutation", permutation)
        self.register_buffer("sign", diagonal.sign())
        self.lower = nn.Parameter(lower.tril(-1))
        self.upper = nn.Parameter(upper.triu(1))
        self.log_diagonal = nn.Parameter(diagonal.abs().log())

    def _factors(self) -> tuple[Tensor, Tensor]:
        eye = torch.eye(len(self.sign), dtype=self.lower.dtype, device=self.lower.device)
        lower = self.lower.tril(-1) + eye
        upper = self.upper.triu(1) + torch.diag(self.sign * self.log_diagonal.exp())
        return lower, upper

    def forward(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        lower, upper = self._factors()
        weight = self.permutation @ lower @ upper
        y = (x.movedim(1, -1) @ weight.T).movedim(-1, 1)
        return y, (self.log_diagonal.sum() * positions(x)).expand(x.shape[0])

    def inverse(self, y: Tensor, context: Tensor | None = None) -> Tensor:
        # x Uᵀ Lᵀ Pᵀ = y: undo Pᵀ, then the two triangular factors.
        lower, upper = self._factors()
        rows = y.movedim(1, -1) @ self.permutation
        x = torch.linalg.solve_triangular(lower.T, rows, upper=True, left=False)
        return torch.linalg.solve_triangular(upper.T, x, upper=False, left=False).movedim(-1, 1)


def glow_steps(
    features: int, masks: Iterable[Tensor], context_dim: int, **coupling: Any
) -> list[Transform]:
    """Glow's steps, one per mask: ActNorm and an LU linear map of the ``features`` (channels
    of images), then an :class:`~flowcf.flows.coupling.AffineCoupling` keeping the mask."""
    return [
        transform
        for mask in masks
        for transform in (
            ActNorm(features),
            LULinear(features),
            AffineCoupling(mask, context_dim, **coupling),
        )
    ]


@FLOWS.register("glow")
@forwards(MLP, AffineCoupling, build_flow)
def glow(dim: int, context_dim: int = 0, *, layers: Count = 8, **options: Any) -> Flow:
    """A Glow flow for vectors: ``layers`` steps of ActNorm, LU linear map, affine coupling.

    Arguments:
        dim: The number of features :math:`D \\geq 2`.
        context_dim: The number of context features, 0 for an unconditional flow.
        layers: The number of steps.
        options: As for :func:`~flowcf.flows.coupling.realnvp`.

    Examples:
        >>> flow = glow(3, context_dim=2, layers=2)
        >>> flow.log_prob(torch.randn(5, 3), torch.eye(2)[[0, 1, 1, 0, 1]]).shape
        torch.Size([5])
    """
    steps = partial(glow_steps, dim, alternating_masks(dim, layers))
    return build_flow(dim, context_dim, steps, **options)
