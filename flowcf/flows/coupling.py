r"""Coupling flows for vectors: NICE and RealNVP, optionally class-conditional.

A coupling layer keeps the features selected by a binary mask and transforms the others
elementwise, with parameters computed by a network from the kept features and the context
(e.g. a one-hot class). Consecutive layers alternate the mask, so every feature is transformed.
With ``base="plugen"`` the couplings are unconditional and the context enters through the base
instead (see :func:`flowcf.flows.distributions.build_base`).

References:
    | NICE: Non-linear Independent Components Estimation (Dinh et al., 2014)
    | https://arxiv.org/abs/1410.8516

    | Density estimation using Real NVP (Dinh et al., 2017)
    | https://arxiv.org/abs/1605.08803
"""

from abc import abstractmethod
from itertools import pairwise
from typing import Any

import torch
from torch import Tensor, nn

from flowcf.flows import FLOWS
from flowcf.flows.base import Flow, Transform, build_flow
from flowcf.registry import forwards
from flowcf.rules import Count, Natural, Positive

__all__ = [
    "MLP",
    "AdditiveCoupling",
    "AffineCoupling",
    "ConvNet",
    "Coupling",
    "DiagonalScaling",
    "alternating_masks",
    "nice",
    "realnvp",
    "soft_clamp",
]


def soft_clamp(x: Tensor, bound: float) -> Tensor:
    r"""Squashes :math:`x` smoothly into :math:`(-a, a)`: :math:`a \tanh(x / a)`."""
    return bound * torch.tanh(x / bound)


class MLP(nn.Sequential):
    """A multi-layer perceptron with SiLU activations whose output layer starts at zero.

    With a zero output layer, a coupling conditioned by this network starts as the identity.

    Arguments:
        in_features: The number of input features.
        out_features: The number of output features.
        hidden: The width of the hidden layers.
        depth: The number of hidden layers.
    """

    def __init__(
        self, in_features: int, out_features: int, *, hidden: Count = 64, depth: Natural = 2
    ):
        widths = [in_features] + [hidden] * depth
        layers: list[nn.Module] = []
        for a, b in pairwise(widths):
            layers += [nn.Linear(a, b), nn.SiLU()]
        output = nn.Linear(widths[-1], out_features)
        nn.init.zeros_(output.weight)
        nn.init.zeros_(output.bias)
        super().__init__(*layers, output)


class ConvNet(nn.Sequential):
    """A convolutional conditioner for images (RealNVP, Glow): a 3×3 convolution, ``depth - 1``
    1×1 convolutions and a 3×3 output convolution that starts at zero, SiLU between them.

    Arguments:
        in_channels: The number of input channels.
        out_channels: The number of output channels.
        hidden: The number of hidden channels.
        depth: The number of hidden layers.
    """

    def __init__(
        self, in_channels: int, out_channels: int, *, hidden: Count = 64, depth: Count = 2
    ):
        layers: list[nn.Module] = [nn.Conv2d(in_channels, hidden, 3, padding=1), nn.SiLU()]
        for _ in range(depth - 1):
            layers += [nn.Conv2d(hidden, hidden, 1), nn.SiLU()]
        output = nn.Conv2d(hidden, out_channels, 3, padding=1)
        nn.init.zeros_(output.weight)
        nn.init.zeros_(output.bias)
        super().__init__(*layers, output)


class Coupling(Transform):
    r"""A coupling layer :math:`y = x \odot \exp(s) + t`, with :math:`s = t = 0` on the kept
    features and :math:`(s, t) = g(x \odot m, c)` elsewhere.

    Subclasses choose how the conditioner's output becomes :math:`(s, t)`. An unconditional
    coupling (``context_dim=0``) ignores the context, as the standard normal base does, so it can
    sit in a flow whose base takes the context. Vectors get an :class:`MLP` conditioner; images
    (a mask of shape :math:`(C, H, W)`) a :class:`ConvNet`, with the context as constant maps.

    Arguments:
        mask: The binary mask :math:`m` of kept features, with shape :math:`(D,)` or
            :math:`(C, H, W)`.
        context_dim: The number of context features, 0 for an unconditional coupling.
        network: The conditioner's ``hidden`` and ``depth`` (:class:`MLP`, :class:`ConvNet`).
    """

    #: How many parameters per feature the conditioner outputs.
    params_per_feature: int

    def __init__(self, mask: Tensor, context_dim: int = 0, **network: int):
        super().__init__()
        features, params = mask.shape[0], self.params_per_feature
        self.context_dim = context_dim
        self.register_buffer("mask", mask.float())
        # Zeroes the conditioner's outputs on the kept features, for each output kind.
        free = (1 - self.mask).repeat(params, *[1] * (mask.dim() - 1))
        self.register_buffer("free", free, persistent=False)
        # The non-batch dimensions, summed over for the log-determinant.
        self.feature_dims = tuple(range(1, mask.dim() + 1))
        conditioner = MLP if mask.dim() == 1 else ConvNet
        self.net = conditioner(features + context_dim, params * features, **network)

    @abstractmethod
    def scale_shift(self, h: Tensor) -> tuple[Tensor, Tensor]:
        """Maps the conditioner's output to the log-scale :math:`s` and the shift :math:`t`;
        zero outputs must give :math:`s = t = 0`."""

    def _condition(self, x: Tensor, context: Tensor | None) -> tuple[Tensor, Tensor]:
        h = x * self.mask
        if self.context_dim:
            maps = context.to(dtype=x.dtype)[(..., *[None] * (x.dim() - 2))]
            h = torch.cat([h, maps.expand(-1, -1, *x.shape[2:])], dim=1)
        return self.scale_shift(self.net(h) * self.free)

    def forward(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        log_scale, shift = self._condition(x, context)
        return torch.addcmul(shift, x, log_scale.exp()), log_scale.sum(self.feature_dims)

    def inverse(self, y: Tensor, context: Tensor | None = None) -> Tensor:
        # The kept features pass through, so y ⊙ m = x ⊙ m gives the same (s, t).
        log_scale, shift = self._condition(y, context)
        return (y - shift) * (-log_scale).exp()


class AffineCoupling(Coupling):
    r"""The affine coupling of RealNVP, :math:`y = x \odot \exp(s) + t`.

    The log-scale is soft-clamped, :math:`s = a \tanh(\hat{s} / a)`, for stable training.

    Arguments:
        mask: The binary mask of kept features, with shape :math:`(D,)` or :math:`(C, H, W)`.
        context_dim: The number of context features.
        scale_clamp: The bound :math:`a` of :math:`|s|`.
        network: The conditioner's options, as for :class:`Coupling`.

    References:
        | Density estimation using Real NVP (Dinh et al., 2017)
        | https://arxiv.org/abs/1605.08803
    """

    params_per_feature = 2

    def __init__(
        self, mask: Tensor, context_dim: int = 0, *, scale_clamp: Positive = 2.0, **network: int
    ):
        super().__init__(mask, context_dim, **network)
        self.scale_clamp = scale_clamp

    def scale_shift(self, h: Tensor) -> tuple[Tensor, Tensor]:
        raw, shift = h.chunk(2, dim=1)
        return soft_clamp(raw, self.scale_clamp), shift


class AdditiveCoupling(Coupling):
    r"""The additive coupling of NICE, :math:`y = x + t`, with a unit Jacobian determinant.

    Arguments:
        mask: The binary mask of kept features, with shape :math:`(D,)`.
        context_dim: The number of context features.
        network: The conditioner's options, as for :class:`Coupling`.

    References:
        | NICE: Non-linear Independent Components Estimation (Dinh et al., 2014)
        | https://arxiv.org/abs/1410.8516
    """

    params_per_feature = 1

    def scale_shift(self, h: Tensor) -> tuple[Tensor, Tensor]:
        return torch.zeros_like(h), h


class DiagonalScaling(Transform):
    r"""A learned diagonal scaling :math:`y = x \odot \exp(s)`, the last layer of NICE.

    Arguments:
        dim: The number of features :math:`D`.

    References:
        | NICE: Non-linear Independent Components Estimation (Dinh et al., 2014)
        | https://arxiv.org/abs/1410.8516
    """

    def __init__(self, dim: int):
        super().__init__()
        self.log_scale = nn.Parameter(torch.zeros(dim))

    def forward(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        return x * self.log_scale.exp(), self.log_scale.sum().expand(x.shape[0])

    def inverse(self, y: Tensor, context: Tensor | None = None) -> Tensor:
        return y * (-self.log_scale).exp()


def alternating_masks(dim: int, layers: int) -> list[Tensor]:
    """Parity masks that alternate between layers: layer ``i`` keeps features ``j`` with
    ``(i + j)`` even (for ``dim=2``: the first feature, then the second, ...)."""
    if dim < 2:
        raise ValueError(f"coupling flows need at least 2 features, got {dim}")
    j = torch.arange(dim)
    return [(i + j) % 2 == 0 for i in range(layers)]


@FLOWS.register("realnvp")
@forwards(MLP, AffineCoupling, build_flow)
def realnvp(dim: int, context_dim: int = 0, *, layers: Count = 8, **options: Any) -> Flow:
    """A RealNVP flow: affine couplings with alternating masks.

    Arguments:
        dim: The number of features :math:`D \\geq 2`.
        context_dim: The number of context features (e.g. classes of a one-hot label), 0 for
            an unconditional flow.
        layers: The number of coupling layers.
        options: The conditioners' (:class:`MLP`), the couplings' (:class:`AffineCoupling`)
            and the base's (:func:`~flowcf.flows.base.build_flow`).

    Examples:
        >>> flow = realnvp(3, context_dim=2, layers=4, base="plugen")
        >>> flow.log_prob(torch.randn(5, 3), torch.eye(2)[[0, 1, 1, 0, 1]]).shape
        torch.Size([5])
    """

    def couplings(transform_context: int, **coupling: Any) -> list[Transform]:
        masks = alternating_masks(dim, layers)
        return [AffineCoupling(mask, transform_context, **coupling) for mask in masks]

    return build_flow(dim, context_dim, couplings, **options)


@FLOWS.register("nice")
@forwards(MLP, build_flow)
def nice(dim: int, context_dim: int = 0, *, layers: Count = 8, **options: Any) -> Flow:
    """A NICE flow: additive couplings with alternating masks and a diagonal scaling.

    Arguments:
        dim: The number of features :math:`D \\geq 2`.
        context_dim: The number of context features, 0 for an unconditional flow.
        layers: The number of coupling layers.
        options: The conditioners' (:class:`MLP`) and the base's
            (:func:`~flowcf.flows.base.build_flow`).

    Examples:
        >>> flow = nice(3, layers=4)
        >>> flow.log_prob(torch.randn(5, 3)).shape
        torch.Size([5])
    """

    def couplings(transform_context: int, **network: int) -> list[Transform]:
        masks = alternating_masks(dim, layers)
        additive = [AdditiveCoupling(mask, transform_context, **network) for mask in masks]
        return [*additive, DiagonalScaling(dim)]

    return build_flow(dim, context_dim, couplings, **options)
