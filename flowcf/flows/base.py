r"""Transforms and the flow that composes them with a base distribution.

A :class:`Flow` maps data :math:`x` to a base variable :math:`z = f(x \mid c)` through a stack of
invertible :class:`Transform` and scores it by the change of variables

.. math:: \log p(x \mid c) = \log p_Z(f(x \mid c) \mid c) + \log |\det J_f(x \mid c)| .

References:
    | Normalizing Flows for Probabilistic Modeling and Inference (Papamakarios et al., 2021)
    | https://arxiv.org/abs/1912.02762
"""

from abc import ABC, abstractmethod
from collections.abc import Sequence

import torch
from torch import Tensor, nn

__all__ = ["Flow", "Transform"]


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
