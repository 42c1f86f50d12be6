r"""Base distributions of flows, and the registry that lets every flow factory choose one.

A base is a module with ``dim``, ``log_prob(z, context) -> (B,)`` and
``sample(n, context, device) -> (n, D)``; bases that ignore the context accept it anyway, so
they are interchangeable inside a :class:`flowcf.flows.Flow`.

Where the context (e.g. a one-hot class) enters is the base's choice, made by :func:`build_base`:
with ``"normal"`` the transforms are conditioned on it and the base is :math:`\mathcal{N}(0, I)`;
with ``"plugen"`` the transforms are unconditional and the context sets the means of the first
base dimensions (:class:`PluGeNNormal`).
"""

import math
from typing import Annotated

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from flowcf.errors import UserError
from flowcf.registry import Registry
from flowcf.rules import one_of

__all__ = ["BASES", "PLUGEN_SIGMA", "Base", "PluGeNNormal", "StandardNormal", "build_base"]

#: The default :math:`\sigma` of :class:`PluGeNNormal`, the default ``--sigma`` of the PluGeN
#: authors' StyleGAN experiments (they also decay it during training, which flowcf does not).
PLUGEN_SIGMA = 0.4


def _normal_log_prob(z: Tensor, loc: Tensor, scale: Tensor) -> Tensor:
    """The log-density of independent normals :math:`\\mathcal{N}(loc_i, scale_i^2)`, summed
    over the last dimension."""
    u = (z - loc) / scale
    return -0.5 * (u.square() + math.log(2 * math.pi)).sum(-1) - scale.log().sum(-1)


class StandardNormal(nn.Module):
    r"""The standard normal distribution :math:`\mathcal{N}(0, I_D)`; it ignores the context.

    Arguments:
        dim: The number of dimensions :math:`D`.

    Examples:
        >>> base = StandardNormal(2)
        >>> base.log_prob(torch.zeros(1, 2))
        tensor([-1.8379])
    """

    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim
        self.register_buffer("loc", torch.zeros(dim))
        self.register_buffer("scale", torch.ones(dim))

    def log_prob(self, z: Tensor, context: Tensor | None = None) -> Tensor:
        """The log-density of ``z`` (shape :math:`(B, D)`) in nats, with shape :math:`(B,)`."""
        # loc = 0 and scale = 1 (the buffers only carry the dtype and device): fewer operations
        # than the general _normal_log_prob, which matters for small batches of few features.
        return z.square().sum(-1).mul(-0.5) - 0.5 * self.dim * math.log(2 * math.pi)

    def sample(
        self, n: int, context: Tensor | None = None, device: torch.device | None = None
    ) -> Tensor:
        """Draws ``n`` samples, with shape :math:`(n, D)`, on ``device`` (default: the buffers).

        The context is ignored.
        """
        loc, scale = self.loc.to(device), self.scale.to(device)
        return loc + scale * torch.randn(n, self.dim, dtype=loc.dtype, device=loc.device)


class PluGeNNormal(nn.Module):
    r"""The attribute-factorized normal base of PluGeN.

    Each of the first :math:`K` dimensions is tied to one attribute of the context
    :math:`c \in \{0, 1\}^K`: it is :math:`\mathcal{N}(+1, \sigma^2)` when the attribute is present
    and :math:`\mathcal{N}(-1, \sigma^2)` when it is absent; the other :math:`D - K` dimensions are
    :math:`\mathcal{N}(0, 1)`. A one-hot class is the single-label case. Soft labels
    :math:`c \in [0, 1]^K` give the means :math:`2c - 1` in between. All dimensions are
    independent, so :math:`\log p(z \mid c)` is exact.

    Arguments:
        dim: The number of dimensions :math:`D`.
        context_dim: The number of attributes :math:`K \leq D`.
        sigma: The standard deviation :math:`\sigma` of the attribute dimensions.

    References:
        | PluGeN: Multi-Label Conditional Generation From Pre-Trained Models (Wołczyk et al., 2022)
        | https://arxiv.org/abs/2109.09011

    Examples:
        >>> base = PluGeNNormal(3, context_dim=2, sigma=0.5)
        >>> c = torch.tensor([[1.0, 0.0]])
        >>> base.log_prob(torch.tensor([[1.0, -1.0, 0.0]]), c)
        tensor([-1.3705])
        >>> base.sample(4, c.expand(4, 2)).shape
        torch.Size([4, 3])
    """

    def __init__(self, dim: int, context_dim: int, sigma: float = PLUGEN_SIGMA):
        super().__init__()
        if not 0 <= context_dim <= dim:
            raise ValueError(
                f"the PluGeN base ties one of its {dim} dimensions to each context feature, so it"
                f" takes at most {dim} context features, got {context_dim}"
            )
        if sigma <= 0:
            raise ValueError(f"the PluGeN base needs sigma > 0, got {sigma}")
        self.dim = dim
        self.context_dim = context_dim
        self.sigma = sigma
        scale = torch.ones(dim)
        scale[:context_dim] = sigma
        self.register_buffer("scale", scale)

    def _loc(self, context: Tensor | None, like: Tensor) -> Tensor:
        """The means :math:`(2c - 1, 0)`, with the dtype and device of ``like``."""
        features = 0 if context is None else context.shape[-1]
        if features != self.context_dim:
            raise ValueError(
                f"the PluGeN base takes {self.context_dim} context features, got {features}"
            )
        if context is None:
            return torch.zeros_like(like)
        return F.pad(2 * context.to(like) - 1, (0, self.dim - self.context_dim))

    def log_prob(self, z: Tensor, context: Tensor | None = None) -> Tensor:
        """The log-density of ``z`` (shape :math:`(B, D)`) given the context (shape
        :math:`(B, K)`) in nats, with shape :math:`(B,)`."""
        return _normal_log_prob(z, self._loc(context, z), self.scale)

    def sample(
        self, n: int, context: Tensor | None = None, device: torch.device | None = None
    ) -> Tensor:
        """Draws ``n`` samples given the contexts (one row per sample, shape :math:`(n, K)`),
        with shape :math:`(n, D)`, on ``device`` (default: the buffers)."""
        scale = self.scale.to(device)
        noise = torch.randn(n, self.dim, dtype=scale.dtype, device=scale.device)
        return self._loc(context, noise) + scale * noise


#: Flow bases by name, as factories ``(dim, context_dim, sigma) -> (base, transform_context)``
#: where ``transform_context`` is the number of context features the transforms take.
BASES = Registry("flow base")


@BASES.register("normal")
def _normal(dim: int, context_dim: int, sigma: float) -> tuple[nn.Module, int]:
    # The standard normal has unit scales: sigma is PluGeN's alone.
    return StandardNormal(dim), context_dim


@BASES.register("plugen")
def _plugen(dim: int, context_dim: int, sigma: float) -> tuple[nn.Module, int]:
    return PluGeNNormal(dim, context_dim, sigma), 0


#: A flow factory's ``base`` option: a name in :data:`BASES`.
Base = Annotated[str, one_of(*BASES)]


def build_base(
    name: str, dim: int, context_dim: int, sigma: float = PLUGEN_SIGMA
) -> tuple[nn.Module, int]:
    r"""Builds a flow's base and decides where the context enters.

    Arguments:
        name: The base, ``"normal"`` (the transforms are conditioned on the context and the base
            is :math:`\mathcal{N}(0, I)`) or ``"plugen"`` (the transforms are unconditional and
            the context enters through :class:`PluGeNNormal`).
        dim: The number of features :math:`D`.
        context_dim: The number of context features of the flow.
        sigma: The standard deviation of the PluGeN base's attribute dimensions.

    Returns:
        The base and the number of context features the transforms take.

    Raises:
        UserError: For an unknown name or options the base cannot take (e.g. more classes than
            features with ``"plugen"``).

    Examples:
        >>> base, transform_context = build_base("plugen", 4, context_dim=2)
        >>> type(base).__name__, transform_context
        ('PluGeNNormal', 0)
    """
    factory = BASES.get(name)
    try:
        return factory(dim, context_dim, sigma)
    except ValueError as error:
        raise UserError(f"base '{name}': {error}") from None
