r"""Masked autoregressive flows (MAF) built from MADE conditioners, optionally class-conditional.

Each layer transforms feature :math:`x_i` affinely with parameters that depend on the features
before it in the layer's order (and on the context), so one pass of a masked network gives the
whole forward map and its triangular Jacobian; the inverse takes one pass per feature. Layers
reverse the order of the layer before, or draw a random order each (``random_order=True``).

References:
    | MADE: Masked Autoencoder for Distribution Estimation (Germain et al., 2015)
    | https://arxiv.org/abs/1502.03509

    | Masked Autoregressive Flow for Density Estimation (Papamakarios et al., 2017)
    | https://arxiv.org/abs/1705.07057
"""

from itertools import pairwise
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from flowcf.flows import FLOWS
from flowcf.flows.base import Flow, Transform, build_flow
from flowcf.flows.coupling import soft_clamp
from flowcf.registry import forwards
from flowcf.rules import Count, Natural, Positive

__all__ = [
    "MADE",
    "MaskedAffine",
    "MaskedLinear",
    "autoregressive_orders",
    "hidden_degrees",
    "maf",
]


class MaskedLinear(nn.Linear):
    """A linear layer whose weight is multiplied by a fixed binary mask.

    Arguments:
        mask: The mask, with shape :math:`(out, in)`.
    """

    def __init__(self, mask: Tensor):
        super().__init__(mask.shape[1], mask.shape[0])
        self.register_buffer("mask", mask.to(self.weight.dtype))

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight * self.mask, self.bias)


def hidden_degrees(dim: int, *, hidden: Count = 64, depth: Natural = 2) -> list[Tensor]:
    """The degrees of a :class:`MADE`'s ``depth`` hidden layers of ``hidden`` units each,
    spread over the :math:`D - 1` degrees a hidden unit can usefully have."""
    return [torch.arange(hidden) % max(dim - 1, 1)] * depth


class MADE(nn.Sequential):
    r"""A masked MLP whose outputs for feature :math:`i` depend only on the features before
    :math:`i` in ``order`` and on the context; its output layer starts at zero.

    Arguments:
        order: The position of each feature in the autoregressive order, with shape
            :math:`(D,)`.
        context_dim: The number of context features, seen by every hidden unit.
        outputs_per_feature: How many outputs each feature gets; they are laid out in
            blocks of :math:`D`, one block per output kind.
        network: The width ``hidden`` and number ``depth`` of the hidden layers
            (:func:`hidden_degrees`).

    Examples:
        >>> made = MADE(torch.tensor([1, 0, 2]), outputs_per_feature=2)
        >>> made(torch.randn(4, 3)).shape
        torch.Size([4, 6])
    """

    def __init__(
        self, order: Tensor, context_dim: int = 0, outputs_per_feature: int = 2, **network: int
    ):
        # Degrees: a unit of degree k sees the features of order < k + 1; the context has
        # degree -1 so every hidden unit sees it.
        inputs = torch.cat([order, order.new_full((context_dim,), -1)])
        outputs = order.repeat(outputs_per_feature)
        degrees = [inputs, *hidden_degrees(order.numel(), **network)]
        layers: list[nn.Module] = []
        for a, b in pairwise(degrees):
            layers += [MaskedLinear(b[:, None] >= a[None, :]), nn.SiLU()]
        output = MaskedLinear(outputs[:, None] > degrees[-1][None, :])
        nn.init.zeros_(output.weight)
        nn.init.zeros_(output.bias)
        super().__init__(*layers, output)


class MaskedAffine(Transform):
    r"""An autoregressive affine layer :math:`z_i = x_i \exp(s_i) + t_i`, with
    :math:`(s_i, t_i)` computed by a :class:`MADE` from the features before :math:`i` and the
    context; :math:`s` is soft-clamped to :math:`(-a, a)`.

    Arguments:
        order: The autoregressive order of the features, with shape :math:`(D,)`.
        context_dim: The number of context features, 0 for an unconditional layer.
        scale_clamp: The bound :math:`a` of :math:`|s|`.
        network: The :class:`MADE`'s options.
    """

    def __init__(
        self, order: Tensor, context_dim: int = 0, *, scale_clamp: Positive = 2.0, **network: int
    ):
        super().__init__()
        self.dim = order.numel()
        self.context_dim = context_dim
        self.scale_clamp = scale_clamp
        self.net = MADE(order, context_dim, 2, **network)

    def _condition(self, x: Tensor, context: Tensor | None) -> tuple[Tensor, Tensor]:
        h = torch.cat([x, context.to(x)], dim=-1) if self.context_dim else x
        raw, shift = self.net(h).chunk(2, dim=-1)
        return soft_clamp(raw, self.scale_clamp), shift

    def forward(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        log_scale, shift = self._condition(x, context)
        return torch.addcmul(shift, x, log_scale.exp()), log_scale.sum(-1)

    def inverse(self, z: Tensor, context: Tensor | None = None) -> Tensor:
        # Each pass fixes the next feature in the order: D passes recover all of x.
        x = torch.zeros_like(z)
        for _ in range(self.dim):
            log_scale, shift = self._condition(x, context)
            x = (z - shift) * (-log_scale).exp()
        return x


def autoregressive_orders(dim: int, layers: int, random: bool = False) -> list[Tensor]:
    """Each layer's order of the features: alternately forward and reversed, or drawn at random
    from the global generator."""
    if random:
        return [torch.randperm(dim) for _ in range(layers)]
    forward = torch.arange(dim)
    return [forward.flip(0) if i % 2 else forward for i in range(layers)]


@FLOWS.register("maf")
@forwards(hidden_degrees, MaskedAffine, build_flow)
def maf(
    dim: int,
    context_dim: int = 0,
    *,
    layers: Count = 5,
    random_order: bool = False,
    **options: Any,
) -> Flow:
    """A masked autoregressive flow: MADE-conditioned affine layers.

    Arguments:
        dim: The number of features :math:`D`.
        context_dim: The number of context features, 0 for an unconditional flow.
        layers: The number of autoregressive layers.
        random_order: Draw each layer's order at random (from the global generator) instead of
            reversing the previous one.
        options: The networks' (:func:`hidden_degrees`), the layers' (:class:`MaskedAffine`)
            and the base's (:func:`~flowcf.flows.base.build_flow`).

    Examples:
        >>> flow = maf(3, context_dim=2, layers=2, random_order=True)
        >>> flow.log_prob(torch.randn(5, 3), torch.eye(2)[[0, 1, 1, 0, 1]]).shape
        torch.Size([5])
    """
    orders = autoregressive_orders(dim, layers, random_order)

    def transforms(transform_context: int, **layer: Any) -> list[Transform]:
        return [MaskedAffine(order, transform_context, **layer) for order in orders]

    return build_flow(dim, context_dim, transforms, **options)
