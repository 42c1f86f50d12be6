r"""Multiscale flows on pixels (``space=pixel``): RealNVP and Glow for images, built by name from
:data:`IMAGE_FLOWS`, with the dequantisation and bits-per-dimension of image density modelling.

A flow takes images :math:`x \in [0, 1]^{C \times H \times W}`, maps them to
:math:`\mathbb{R}` with a logit, then, per level, squeezes each 2×2 block of pixels into
channels, applies its steps and factors half of the channels out to the base (Dinh et al.,
2017, §3.6). The base variable is the concatenation of every level's output, coarsest first, so
a PluGeN base's class dimensions sit in the most global features.

References:
    | Density estimation using Real NVP (Dinh et al., 2017)
    | https://arxiv.org/abs/1605.08803

    | Glow: Generative Flow with Invertible 1x1 Convolutions (Kingma & Dhariwal, 2018)
    | https://arxiv.org/abs/1807.03039
"""

import math
from collections.abc import Callable, Sequence
from typing import Annotated, Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from flowcf.errors import UserError
from flowcf.flows import IMAGE_FLOWS
from flowcf.flows.base import Flow, Transform, build_flow
from flowcf.flows.coupling import AffineCoupling, ConvNet
from flowcf.flows.glow import glow_steps
from flowcf.registry import forwards
from flowcf.rules import Count, between

__all__ = [
    "Logit",
    "Multiscale",
    "bits_per_dim",
    "dequantize",
    "glow",
    "multiscale_flow",
    "realnvp",
]

Shape = tuple[int, int, int]


def dequantize(x: Tensor, levels: int = 256) -> Tensor:
    r"""Uniform dequantisation: pixels in :math:`[0, 1]` rounded to ``levels`` values :math:`k`,
    then :math:`(k + u) / \text{levels}` with :math:`u \sim U(0, 1)`, so a continuous density
    bounds the discrete likelihood (Theis et al., 2016)."""
    k = torch.round(x.clamp(0, 1) * (levels - 1))
    return (k + torch.rand_like(x)) / levels


def bits_per_dim(nll: Tensor, dim: int, levels: int = 256) -> Tensor:
    r"""The discrete negative log-likelihood in bits per dimension of a density on
    :math:`[0, 1]^D` fitted to dequantised data: :math:`(\text{NLL} / D + \log L) / \log 2`."""
    return (nll / dim + math.log(levels)) / math.log(2)


class Logit(Transform):
    r"""Pixels to logits, :math:`y = \mathrm{logit}(\alpha + (1 - 2\alpha) x)`, so that the
    flow works on :math:`\mathbb{R}` and not on the bounded :math:`[0, 1]` (RealNVP §4.1).

    Arguments:
        alpha: The margin :math:`\alpha` kept from 0 and 1.
    """

    def __init__(self, alpha: float = 0.05):
        super().__init__()
        self.alpha = alpha

    def forward(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        p = self.alpha + (1 - 2 * self.alpha) * x
        ladj = math.log(1 - 2 * self.alpha) - p.log() - (-p).log1p()
        return p.logit(), ladj.flatten(1).sum(1)

    def inverse(self, y: Tensor, context: Tensor | None = None) -> Tensor:
        return (y.sigmoid() - self.alpha) / (1 - 2 * self.alpha)


class Multiscale(Transform):
    r"""Levels of squeeze → steps → factor-out, from images :math:`(B, C, H, W)` to vectors
    :math:`(B, C H W)`; the last level keeps all its channels.

    Arguments:
        shape: The input shape :math:`(C, H, W)`; :math:`H` and :math:`W` divisible by
            :math:`2^L` for :math:`L` levels.
        levels: Each level's steps, built by ``steps(shape)`` from the squeezed shape.
    """

    def __init__(self, shape: Shape, levels: Sequence[Sequence[Transform]]):
        super().__init__()
        self.levels = nn.ModuleList(nn.ModuleList(steps) for steps in levels)
        self.shapes = level_shapes(shape, len(levels))
        # How many features of the output vector each level factors out, coarsest first.
        halves = [math.prod(shape) // 2 for shape in self.shapes[:-1]]
        self.sizes = [math.prod(self.shapes[-1]), *halves[::-1]]

    def forward(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        ladj, outputs = x.new_zeros(x.shape[0]), []
        for index, steps in enumerate(self.levels):
            x = F.pixel_unshuffle(x, 2)
            for step in steps:
                x, step_ladj = step(x, context)
                ladj = ladj + step_ladj
            if index < len(self.levels) - 1:
                out, x = x.chunk(2, dim=1)
                outputs.append(out.flatten(1))
        outputs.append(x.flatten(1))
        return torch.cat(outputs[::-1], dim=1), ladj

    def inverse(self, y: Tensor, context: Tensor | None = None) -> Tensor:
        last = len(self.levels) - 1
        pieces = y.split(self.sizes, dim=1)[::-1]
        x = pieces[last].view(-1, *self.shapes[last])
        for index in reversed(range(len(self.levels))):
            if index < last:
                channels, height, width = self.shapes[index]
                x = torch.cat([pieces[index].view(-1, channels // 2, height, width), x], dim=1)
            for step in reversed(self.levels[index]):
                x = step.inverse(x, context)
            x = F.pixel_shuffle(x, 2)
        return x


def level_shapes(shape: Shape, levels: int) -> list[Shape]:
    """The shape each level's steps see: squeezed, after the previous levels' factor-outs."""
    channels, height, width = shape
    if levels < 1 or height % 2**levels or width % 2**levels:
        raise UserError(
            f"{levels} levels need an image size divisible by {2**levels}, got {height}×{width}; "
            "change model.levels or data.size"
        )
    shapes = []
    for _ in range(levels):
        channels, height, width = 4 * channels, height // 2, width // 2
        shapes.append((channels, height, width))
        channels //= 2
    return shapes


def channel_mask(shape: Shape, parity: int) -> Tensor:
    """Keeps the first half of the channels (``parity`` 0) or the second (1)."""
    channels = shape[0]
    keep = (torch.arange(channels) < channels // 2) != bool(parity)
    return keep[:, None, None].expand(shape)


def checkerboard_mask(shape: Shape, parity: int) -> Tensor:
    """Keeps the pixels :math:`(i, j)` with :math:`i + j \\equiv` ``parity`` (mod 2)."""
    _, height, width = shape
    board = (torch.arange(height)[:, None] + torch.arange(width)) % 2 == parity
    return board.expand(shape)


@forwards(build_flow)
def multiscale_flow(
    shape: Shape,
    context_dim: int,
    steps: Callable[..., list[Transform]],
    *,
    levels: Count = 3,
    alpha: Annotated[float, between(0, 0.5)] = 0.05,
    **options: Any,
) -> Flow:
    """The builder the image flow factories forward to: a :class:`Logit` and the
    :class:`Multiscale` levels whose steps ``steps(shape, transform_context, **options)`` are
    built for each level's shape, with the base of :func:`~flowcf.flows.base.build_flow`.

    Arguments:
        shape: The image shape :math:`(C, H, W)`.
        context_dim: The number of context features, 0 for an unconditional flow.
        steps: Builds a level's steps.
        levels: The number of squeeze/factor-out levels.
        alpha: The :class:`Logit` margin.
        options: The steps' and the base's (:func:`~flowcf.flows.base.build_flow`).
    """
    if len(shape) != 3:
        raise UserError(f"image flows take images (channels, height, width), got shape {shape}")

    def transforms(transform_context: int, **step_options: Any) -> list[Transform]:
        scales = [
            steps(level, transform_context, **step_options)
            for level in level_shapes(shape, levels)
        ]
        return [Logit(alpha), Multiscale(shape, scales)]

    return build_flow(math.prod(shape), context_dim, transforms, **options)


@IMAGE_FLOWS.register("realnvp")
@forwards(ConvNet, AffineCoupling, multiscale_flow)
def realnvp(shape: Shape, context_dim: int = 0, *, layers: Count = 4, **options: Any) -> Flow:
    """A multiscale RealNVP for images: per level, ``layers`` affine couplings with
    convolutional conditioners whose masks cycle through the two checkerboards and the two
    channel halves.

    Arguments:
        shape: The image shape :math:`(C, H, W)`.
        context_dim: The number of context features, 0 for an unconditional flow.
        layers: The couplings per level.
        options: The conditioners' (:class:`~flowcf.flows.coupling.ConvNet`), the couplings'
            (:class:`~flowcf.flows.coupling.AffineCoupling`), the levels' and the base's
            (:func:`multiscale_flow`).

    Examples:
        >>> flow = realnvp((1, 8, 8), context_dim=2, levels=2, layers=2, hidden=8)
        >>> flow.log_prob(torch.rand(3, 1, 8, 8), torch.eye(2)[[0, 1, 1]]).shape
        torch.Size([3])
    """
    masks = (checkerboard_mask, checkerboard_mask, channel_mask, channel_mask)

    def steps(level: Shape, transform_context: int, **coupling: Any) -> list[Transform]:
        return [
            AffineCoupling(masks[i % 4](level, i % 2), transform_context, **coupling)
            for i in range(layers)
        ]

    return multiscale_flow(shape, context_dim, steps, **options)


@IMAGE_FLOWS.register("glow")
@forwards(ConvNet, AffineCoupling, multiscale_flow)
def glow(shape: Shape, context_dim: int = 0, *, layers: Count = 4, **options: Any) -> Flow:
    """A multiscale Glow for images: per level, ``layers`` steps of ActNorm, an invertible 1×1
    convolution in LU form and an affine coupling of half the channels.

    Arguments:
        shape: The image shape :math:`(C, H, W)`.
        context_dim: The number of context features, 0 for an unconditional flow.
        layers: The steps per level.
        options: As for :func:`realnvp`.

    Examples:
        >>> flow = glow((1, 8, 8), levels=2, layers=2, hidden=8)
        >>> flow.sample(2).shape
        torch.Size([2, 1, 8, 8])
    """

    def steps(level: Shape, transform_context: int, **coupling: Any) -> list[Transform]:
        masks = [channel_mask(level, i % 2) for i in range(layers)]
        return glow_steps(level[0], masks, transform_context, **coupling)

    return multiscale_flow(shape, context_dim, steps, **options)
