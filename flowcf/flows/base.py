r"""Transforms, the flow that composes them with a base distribution, and :func:`build_flow`,
the builder every flow factory forwards its shared options to.

A :class:`Flow` maps data :math:`x` to a base variable :math:`z = f(x \mid c)` through a stack of
invertible :class:`Transform` and scores it by the change of variables

.. math:: \log p(x \mid c) = \log p_Z(f(x \mid c) \mid c) + \log |\det J_f(x \mid c)| .

References:
    | Normalizing Flows for Probabilistic Modeling and Inference (Papamakarios et al., 2021)
    | https://arxiv.org/abs/1912.02762
"""

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from flowcf.flows.distributions import PLUGEN_SIGMA, Base, build_base
from flowcf.rules import Positive

__all__ = ["Flow", "Transform", "build_flow"]


class Transform(nn.Module, ABC):
    """An invertible map of vectors (B, D), optionally conditioned on a context vector. Image
    transforms (:mod:`flowcf.flows.images`) map (B, C, H, W) the same way, and may change the
    shape (a multiscale stack ends in vectors)."""

    #: Whether :meth:`inverse` is available (a planar layer's is not, and raises).
    invertible: bool = True

    @abstractmethod
    def forward(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        r"""Maps :math:`x` to :math:`y`.

        Arguments:
            x: The inputs, with shape :math:`(B, D)`.
            context: The contexts, with shape :math:`(B, C)`, or :py:`None`.

        Returns:
            The outputs :math:`y`, with shape :math:`(B, D)`, and
            :math:`\log |\det \partial y / \partial x|`, with shape :math:`(B,)`.
        """

    @abstractmethod
    def inverse(self, y: Tensor, context: Tensor | None = None) -> Tensor:
        """Maps :math:`y` back to :math:`x`, with shape :math:`(B, D)`."""


class Flow(nn.Module):
    r"""A normalizing flow: transforms from data to base space and a base distribution.

    Arguments:
        transforms: The transforms, applied in order from data to base space.
        base: The base distribution, a module with ``dim``, ``log_prob(z, context)`` and
            ``sample(n, context)`` (e.g. :class:`flowcf.flows.StandardNormal`).
        context_dim: The number of context features :math:`C`, 0 for an unconditional flow.

    Examples:
        >>> import torch
        >>> from flowcf.flows import FLOWS
        >>> flow = FLOWS.build("realnvp", 2, context_dim=3)
        >>> x, c = torch.randn(5, 2), torch.eye(3)[torch.randint(3, (5,))]
        >>> flow.log_prob(x, c).shape
        torch.Size([5])
        >>> flow.sample(7, torch.eye(3)[[0] * 7]).shape
        torch.Size([7, 2])
    """

    def __init__(self, transforms: Sequence[Transform], base: nn.Module, context_dim: int = 0):
        super().__init__()
        self.transforms = nn.ModuleList(transforms)
        self.base = base
        self.dim: int = base.dim
        self.context_dim = context_dim

    @property
    def invertible(self) -> bool:
        """Whether :meth:`inverse` and :meth:`sample` are available."""
        return all(transform.invertible for transform in self.transforms)

    def _check_context(self, context: Tensor | None) -> None:
        if (context is None) != (self.context_dim == 0):
            takes = f"{self.context_dim} context features" if self.context_dim else "no context"
            raise ValueError(f"this flow takes {takes} per sample")

    def forward(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        r"""Maps data :math:`x` to base space.

        Returns:
            :math:`z`, with shape :math:`(B, D)`, and :math:`\log |\det \partial z / \partial x|`,
            with shape :math:`(B,)`.
        """
        self._check_context(context)
        ladjs = []
        for transform in self.transforms:
            x, ladj = transform(x, context)
            ladjs.append(ladj)
        return x, torch.stack(ladjs).sum(0)

    def inverse(self, z: Tensor, context: Tensor | None = None) -> Tensor:
        """Maps base samples :math:`z` back to data space, with shape :math:`(B, D)`."""
        self._check_context(context)
        for transform in reversed(self.transforms):
            z = transform.inverse(z, context)
        return z

    def log_prob(self, x: Tensor, context: Tensor | None = None) -> Tensor:
        r"""The log-density :math:`\log p(x \mid c)` in nats, with shape :math:`(B,)`."""
        z, logabsdet = self(x, context)
        return self.base.log_prob(z, context) + logabsdet

    def sample(self, n: int, context: Tensor | None = None) -> Tensor:
        """Draws ``n`` samples, with shape :math:`(n, D)`.

        Gradients flow through the samples; wrap the call in :func:`torch.no_grad` when they are
        not needed.

        Arguments:
            n: The number of samples.
            context: The contexts, one row per sample, with shape :math:`(n, C)`, or :py:`None`.
        """
        if context is not None and context.shape[0] != n:
            raise ValueError(f"context has {context.shape[0]} rows for {n} samples")
        return self.inverse(self.base.sample(n, context), context)


def build_flow(
    dim: int,
    context_dim: int,
    transforms: Callable[..., Sequence[Transform]],
    *,
    base: Base = "normal",
    sigma: Positive = PLUGEN_SIGMA,
    **options: Any,
) -> Flow:
    """The flow of the base named ``base`` and the transforms ``transforms(transform_context,
    **options)``, where ``transform_context`` is the number of context features the base leaves
    to the transforms (all of them, or none when the base takes the context).

    Every flow factory forwards its ``**options`` here (:func:`~flowcf.registry.forwards`), so
    ``base`` and ``sigma`` are declared once for all of them, and the factory's transforms get
    the rest (``hidden``, ``depth`` of their networks, say), as zuko's flows pass their
    ``**kwargs`` on to their transforms and networks.

    Arguments:
        dim: The number of features :math:`D` of the base.
        context_dim: The number of context features of the flow, 0 for an unconditional flow.
        transforms: Builds the transforms, from data to base space.
        base: ``"normal"`` (context-conditioned transforms, standard normal base) or
            ``"plugen"`` (unconditional transforms, :class:`~flowcf.flows.PluGeNNormal` base).
        sigma: The standard deviation of the PluGeN base's attribute dimensions
            (``base="plugen"`` only).
        options: The transforms' options.
    """
    distribution, transform_context = build_base(base, dim, context_dim, sigma)
    return Flow(transforms(transform_context, **options), distribution, context_dim)
