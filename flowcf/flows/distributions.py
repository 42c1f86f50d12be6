"""Base distributions of flows.

A base is a module with ``dim``, ``log_prob(z, context) -> (B,)`` and
``sample(n, context, device) -> (n, D)``; bases that ignore the context accept it anyway, so
they are interchangeable inside a :class:`flowcf.flows.Flow`.
"""

import math

import torch
from torch import Tensor, nn

__all__ = ["StandardNormal"]


class StandardNormal(nn.Module):
    r"""The standard normal distribution :math:`\mathcal{N}(0, I_D)`; it ignores the context.

    Arguments:
        dim: The number of dimensions :math:`D`.

    Example:
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
        u = (z - self.loc) / self.scale
        return -0.5 * (u.square() + math.log(2 * math.pi)).sum(-1) - self.scale.log().sum()

    def sample(
        self, n: int, context: Tensor | None = None, device: torch.device | None = None
    ) -> Tensor:
        """Draws ``n`` samples, with shape :math:`(n, D)`, on ``device`` (default: the buffers).

        The context is ignored.
        """
        loc, scale = self.loc.to(device), self.scale.to(device)
        return loc + scale * torch.randn(n, self.dim, dtype=loc.dtype, device=loc.device)
