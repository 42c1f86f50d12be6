r"""Continuous normalizing flows: an ODE from data (:math:`t = 0`) to base space (:math:`t = 1`).

A network :math:`v(x, t, c)` is a velocity; integrating :math:`\dot{x} = v` maps data to base
space, and the log-determinant of that map integrates the divergence,

.. math:: \log p(x \mid c) = \log p_Z(x_1 \mid c) + \int_0^1 \operatorname{tr}
    \frac{\partial v}{\partial x}(x_t, t, c) \, dt .

The trace is computed exactly (one backward pass per feature) or estimated by Hutchinson's
:math:`\epsilon^\top \frac{\partial v}{\partial x} \epsilon` (one pass, unbiased, with one
:math:`\epsilon` per solve as in FFJORD). The ODE is solved by torchdiffeq. Training is by
maximum likelihood through the solver or, without any solve, by conditional flow matching
(:func:`flow_matching_loss`; ``model.objective=flow_matching``).

References:
    | Neural Ordinary Differential Equations (Chen et al., 2018)
    | https://arxiv.org/abs/1806.07366

    | FFJORD: Free-form Continuous Dynamics for Scalable Reversible Generative Models
      (Grathwohl et al., 2019)
    | https://arxiv.org/abs/1810.01367

    | Flow Matching for Generative Modeling (Lipman et al., 2023)
    | https://arxiv.org/abs/2210.02747
"""

from typing import Annotated, Any

import torch
from torch import Tensor
from torchdiffeq import odeint

from flowcf.errors import UserError
from flowcf.flows import FLOWS
from flowcf.flows.base import Flow, Transform, build_flow
from flowcf.flows.coupling import MLP
from flowcf.registry import Registry, forwards
from flowcf.rules import Natural, Positive, one_of

__all__ = ["TRACES", "ContinuousTransform", "cnf", "flow_matching_loss"]

#: Divergence estimators ``(v, x, noise, create_graph) -> tr(∂v/∂x)``, shape :math:`(B,)`.
TRACES = Registry("trace estimator")
#: ``trace="auto"`` is exact up to this many features and Hutchinson's above.
EXACT_TRACE_MAX_DIM = 8


@TRACES.register("exact")
def exact_trace(v: Tensor, x: Tensor, noise: Tensor, create_graph: bool) -> Tensor:
    """The exact divergence, one backward pass per feature (``noise`` is unused)."""
    divergence = torch.zeros_like(v[:, 0])
    for i in range(x.shape[1]):
        (row,) = torch.autograd.grad(
            v[:, i].sum(), x, create_graph=create_graph, retain_graph=True
        )
        divergence = divergence + row[:, i]
    return divergence


@TRACES.register("hutchinson")
def hutchinson_trace(v: Tensor, x: Tensor, noise: Tensor, create_graph: bool) -> Tensor:
    r"""Hutchinson's unbiased estimate :math:`\epsilon^\top (\partial v / \partial x) \epsilon`
    for Rademacher ``noise`` :math:`\epsilon`."""
    (vjp,) = torch.autograd.grad(v, x, noise, create_graph=create_graph)
    return (vjp * noise).sum(-1)


#: The ``trace`` option of :func:`cnf`: a name in :data:`TRACES`, or ``"auto"``.
Trace = Annotated[str, one_of("auto", *TRACES)]


class ContinuousTransform(Transform):
    r"""The time-1 map of :math:`\dot{x} = v(x, t, c)`, with :math:`v` an MLP of
    :math:`(x, t, c)` whose output layer starts at zero (the identity map).

    Arguments:
        dim: The number of features :math:`D`.
        context_dim: The number of context features, 0 for an unconditional field.
        trace: The divergence estimator, a name in :data:`TRACES`.
        solver: A torchdiffeq method, e.g. ``"dopri5"`` (adaptive) or ``"rk4"`` (fixed step).
        atol: The solver's absolute tolerance.
        rtol: The solver's relative tolerance.
        network: The field's ``hidden`` and ``depth`` (:class:`~flowcf.flows.coupling.MLP`).
    """

    def __init__(
        self,
        dim: int,
        context_dim: int = 0,
        *,
        trace: str = "exact",
        solver: str = "dopri5",
        atol: Positive = 1e-5,
        rtol: Positive = 1e-5,
        **network: int,
    ):
        super().__init__()
        self.context_dim = context_dim
        self.trace = TRACES.get(trace)
        self.solve = {"method": solver, "atol": atol, "rtol": rtol}
        self.field = MLP(dim + 1 + context_dim, dim, **network)

    def velocity(self, t: Tensor, x: Tensor, context: Tensor | None = None) -> Tensor:
        """The velocity at times ``t`` (a scalar or shape :math:`(B, 1)`), shape :math:`(B, D)`."""
        inputs = [x, t.to(x).expand(x.shape[0], 1)]
        if self.context_dim:
            inputs.append(context.to(x))
        return self.field(torch.cat(inputs, dim=-1))

    def _times(self, x: Tensor, reverse: bool = False) -> Tensor:
        times = torch.tensor([0.0, 1.0], dtype=x.dtype, device=x.device)
        return times.flip(0) if reverse else times

    def forward(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        # The divergence needs ∂v/∂x even under no_grad; its graph is kept only when the caller
        # differentiates the result.
        create_graph = torch.is_grad_enabled()
        noise = torch.randint_like(x, 2) * 2 - 1

        def dynamics(t: Tensor, state: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
            with torch.enable_grad():
                xt = state[0] if state[0].requires_grad else state[0].detach().requires_grad_()
                v = self.velocity(t, xt, context)
                divergence = self.trace(v, xt, noise, create_graph)
            return (v, divergence) if create_graph else (v.detach(), divergence.detach())

        start = (x, x.new_zeros(x.shape[0]))
        z, logabsdet = odeint(dynamics, start, self._times(x), **self.solve)
        return z[-1], logabsdet[-1]

    def inverse(self, z: Tensor, context: Tensor | None = None) -> Tensor:
        def dynamics(t: Tensor, x: Tensor) -> Tensor:
            return self.velocity(t, x, context)

        return odeint(dynamics, z, self._times(z, reverse=True), **self.solve)[-1]


@FLOWS.register("cnf")
@forwards(MLP, ContinuousTransform, build_flow)
def cnf(
    dim: int, context_dim: int = 0, *, depth: Natural = 3, trace: Trace = "auto", **options: Any
) -> Flow:
    """A continuous normalizing flow: one ODE transform and a base.

    Arguments:
        dim: The number of features :math:`D`.
        context_dim: The number of context features, 0 for an unconditional flow.
        depth: The number of the field's hidden layers.
        trace: ``"exact"``, ``"hutchinson"`` or ``"auto"`` (exact up to
            :data:`EXACT_TRACE_MAX_DIM` features). Hutchinson's log-densities are unbiased
            but noisy estimates.
        options: The field's (:class:`~flowcf.flows.coupling.MLP`), the solver's
            (:class:`ContinuousTransform`) and the base's (:func:`~flowcf.flows.base.build_flow`).

    Examples:
        >>> flow = cnf(3, context_dim=2, hidden=16)
        >>> flow.log_prob(torch.randn(5, 3), torch.eye(2)[[0, 1, 1, 0, 1]]).shape
        torch.Size([5])
    """
    if trace == "auto":
        trace = "exact" if dim <= EXACT_TRACE_MAX_DIM else "hutchinson"

    def transforms(transform_context: int, **field: Any) -> list[Transform]:
        return [ContinuousTransform(dim, transform_context, trace=trace, depth=depth, **field)]

    return build_flow(dim, context_dim, transforms, **options)


def flow_matching_loss(flow: Flow, x: Tensor, context: Tensor | None = None) -> Tensor:
    r"""The conditional flow matching loss of a CNF, without solving the ODE.

    Along the straight paths :math:`x_t = (1 - t) x + t z` from data :math:`x` to base samples
    :math:`z \sim p_Z(\cdot \mid c)`, the field regresses on their velocity :math:`z - x`:
    :math:`\mathbb{E}_{t, x, z} \|v(x_t, t, c) - (z - x)\|^2` (Lipman et al.'s conditional
    OT path with :math:`\sigma_{min} = 0`, from data at :math:`t = 0` to noise at :math:`t = 1`).

    Raises:
        UserError: When ``flow`` is not a :func:`cnf`.
    """
    if len(flow.transforms) != 1 or not isinstance(flow.transforms[0], ContinuousTransform):
        raise UserError("objective 'flow_matching' trains continuous flows only: use model=cnf")
    z = flow.base.sample(x.shape[0], context, device=x.device).to(x.dtype)
    t = torch.rand(x.shape[0], 1, dtype=x.dtype, device=x.device)
    target = z - x
    return (
        (flow.transforms[0].velocity(t, x + t * target, context) - target).square().sum(-1).mean()
    )
