r"""Planar and radial flows, optionally class-conditional.

Each layer moves the points along one direction (planar) or towards/away from one centre
(radial), with parameters that are an affine function of the context. Both satisfy constraints
that make every layer invertible, with a Jacobian determinant in closed form.

The maps run from data to base space, so :meth:`~flowcf.flows.Flow.log_prob` is exact. A planar
layer has no analytic inverse: **planar flows evaluate densities only**; their ``inverse`` and
``sample`` raise a :class:`~flowcf.errors.UserError`. A radial layer's inverse reduces to a
quadratic in the radius, so radial flows also sample.

References:
    | Variational Inference with Normalizing Flows (Rezende & Mohamed, 2015)
    | https://arxiv.org/abs/1505.05770
"""

from functools import partial
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from flowcf.errors import UserError
from flowcf.flows import FLOWS
from flowcf.flows.base import Flow, Transform, build_flow
from flowcf.registry import forwards
from flowcf.rules import Count

__all__ = ["ContextAffine", "Planar", "Radial", "layer_flow"]


class ContextAffine(nn.Module):
    r"""Per-sample parameters :math:`\theta(c) = \theta_0 + A c`, with :math:`A = 0` at first.

    Arguments:
        initial: The initial :math:`\theta_0`, with shape :math:`(P,)`.
        context_dim: The number of context features, 0 for parameters without context.
    """

    def __init__(self, initial: Tensor, context_dim: int = 0):
        super().__init__()
        self.context_dim = context_dim
        self.bias = nn.Parameter(initial.clone())
        self.weight = nn.Parameter(torch.zeros(len(initial), context_dim))

    def forward(self, x: Tensor, context: Tensor | None) -> Tensor:
        """The parameters of each sample of ``x``, with shape :math:`(B, P)`."""
        if self.context_dim:
            return self.bias + context.to(x) @ self.weight.T
        return self.bias.expand(x.shape[0], -1)


class Planar(Transform):
    r"""A planar layer :math:`y = x + \hat{u} \tanh(w^\top x + b)`.

    :math:`\hat{u}` is :math:`u` moved along :math:`w` so that :math:`w^\top \hat{u} \geq -1`,
    which keeps the map invertible, and
    :math:`\log |\det J| = \log (1 + \tanh'(w^\top x + b) \, w^\top \hat{u})`. The layer has no
    analytic inverse; :meth:`inverse` raises a :class:`~flowcf.errors.UserError`.

    Arguments:
        dim: The number of features :math:`D`.
        context_dim: The number of context features, 0 for an unconditional layer.
    """

    invertible = False

    def __init__(self, dim: int, context_dim: int = 0):
        super().__init__()
        self.dim = dim
        initial = torch.cat([torch.randn(dim) / dim**0.5, torch.zeros(dim + 1)])
        self.params = ContextAffine(initial, context_dim)

    def forward(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        w, u, b = self.params(x, context).split([self.dim, self.dim, 1], dim=-1)
        wu = (w * u).sum(-1, keepdim=True)
        w_u_hat = F.softplus(wu) - 1  # wᵀû > -1
        u_hat = u + (w_u_hat - wu) * w / w.square().sum(-1, keepdim=True)
        h = torch.tanh((w * x).sum(-1, keepdim=True) + b)
        return x + u_hat * h, ((1 - h.square()) * w_u_hat).squeeze(-1).log1p()

    def inverse(self, y: Tensor, context: Tensor | None = None) -> Tensor:
        raise UserError(
            "planar flows evaluate densities only: a planar layer has no analytic inverse, so"
            " they cannot map base points back or sample; choose an invertible flow"
            " (e.g. model=radial or model=realnvp) to sample"
        )


class Radial(Transform):
    r"""A radial layer :math:`y = x + \beta \, (x - x_0) / (\alpha + r)`, with
    :math:`r = \|x - x_0\|`, :math:`\alpha > 0` and :math:`\beta \geq -\alpha` (invertible).

    :math:`\log |\det J| = (D - 1) \log(1 + \beta h) + \log(1 + \alpha \beta h^2)` with
    :math:`h = 1 / (\alpha + r)`. The inverse solves
    :math:`\|y - x_0\| = r (1 + \beta / (\alpha + r))`, a quadratic in :math:`r`.

    Arguments:
        dim: The number of features :math:`D`.
        context_dim: The number of context features, 0 for an unconditional layer.
    """

    def __init__(self, dim: int, context_dim: int = 0):
        super().__init__()
        self.dim = dim
        self.params = ContextAffine(torch.cat([torch.randn(dim), torch.zeros(2)]), context_dim)

    def _unpack(self, x: Tensor, context: Tensor | None) -> tuple[Tensor, Tensor, Tensor]:
        centre, alpha, beta = self.params(x, context).split([self.dim, 1, 1], dim=-1)
        alpha = F.softplus(alpha)
        return centre, alpha, F.softplus(beta) - alpha

    def forward(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        centre, alpha, beta = self._unpack(x, context)
        r = (x - centre).norm(dim=-1, keepdim=True)
        h = 1 / (alpha + r)
        ladj = (self.dim - 1) * (beta * h).log1p() + (beta * alpha * h.square()).log1p()
        return x + beta * h * (x - centre), ladj.squeeze(-1)

    def inverse(self, y: Tensor, context: Tensor | None = None) -> Tensor:
        centre, alpha, beta = self._unpack(y, context)
        radius = (y - centre).norm(dim=-1, keepdim=True)
        # r² + p r - q = 0 with q ≥ 0; its root r ≥ 0, in a form without cancellation.
        p, q = alpha + beta - radius, alpha * radius
        root = (p.square() + 4 * q).sqrt()
        r = torch.where(p > 0, 2 * q / (p + root), (root - p) / 2)
        return centre + (y - centre) / (1 + beta / (alpha + r))


@forwards(build_flow)
def layer_flow(
    layer: type[Transform], dim: int, context_dim: int = 0, *, layers: Count = 16, **options: Any
) -> Flow:
    """A flow of ``layers`` layers of one kind, registered as ``planar`` (:class:`Planar`:
    densities only, no inverse, no sampling) and ``radial`` (:class:`Radial`).

    Arguments:
        layer: The layer class.
        dim: The number of features :math:`D`.
        context_dim: The number of context features, 0 for an unconditional flow.
        layers: The number of layers.
        options: The base's (:func:`~flowcf.flows.base.build_flow`).

    Examples:
        >>> flow = FLOWS.build("planar", 3, context_dim=2, layers=4)
        >>> flow.log_prob(torch.randn(5, 3), torch.eye(2)[[0, 1, 1, 0, 1]]).shape
        torch.Size([5])
        >>> FLOWS.build("radial", 3, layers=4).sample(5).shape
        torch.Size([5, 3])
    """

    def transforms(transform_context: int) -> list[Transform]:
        return [layer(dim, transform_context) for _ in range(layers)]

    return build_flow(dim, context_dim, transforms, **options)


FLOWS.register("planar")(partial(layer_flow, Planar))
FLOWS.register("radial")(partial(layer_flow, Radial))
