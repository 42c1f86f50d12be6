r"""A PluGeN flow over several binary attributes, scored given the class of one of them.

Multi-label data (CelebA) describe every point by :math:`K` attributes :math:`a \in \{0, 1\}^K`;
the classifier explains the first, :math:`y = a_1`. The flow :math:`p_F(z \mid a)` is trained on
all of them (one PluGeN base dimension :math:`\mathcal{N}(\pm 1, \sigma^2)` per attribute), and
:class:`AttributeFlow` scores a code given only the class :math:`y`, as counterfactual search and
the ``log_density`` metric ask (:math:`\log p_F(z' \mid \tilde y)`), by summing out the other
attributes under a prior that takes them as independent given the class,
:math:`p(a \mid y) \approx \prod_k p(a_k \mid y)` with :math:`p(a_k \mid y)` their training
frequencies. Real attributes are correlated (Male and No_Beard, say): this is the marginal under
that product prior, not under their joint frequencies:

.. math:: p(z \mid y) = \sum_a p(a \mid y)\, p_F(z \mid a) = |\det J_f(z)| \prod_{k \le K}
    \big(\pi_k \mathcal{N}(u_k; 1, \sigma^2) + (1 - \pi_k) \mathcal{N}(u_k; -1, \sigma^2)\big)
    \prod_{k > K} \mathcal{N}(u_k; 0, 1),

with :math:`u = f(z)` and :math:`\pi_k = p(a_k = 1 \mid y)`. Because the PluGeN base factorises
over dimensions and its transforms ignore the context, that sum over the :math:`2^{K-1}` attribute
vectors takes one pass, with no sampling. For the explained attribute :math:`\pi_1 \in \{0, 1\}`.

References:
    | PluGeN: Multi-Label Conditional Generation From Pre-Trained Models (Wołczyk et al., 2022)
    | https://arxiv.org/abs/2109.09011

Examples:
    >>> from flowcf.flows import FLOWS
    >>> inner = FLOWS.build("realnvp", 4, context_dim=3, layers=2, base="plugen")
    >>> prior = torch.tensor([[0.0, 0.5, 0.2], [1.0, 0.3, 0.9]])  # p(a_k = 1 | y = c)
    >>> flow = AttributeFlow(inner, prior)
    >>> flow.log_prob(torch.randn(5, 4), torch.eye(2)[[0, 1, 1, 0, 1]]).shape
    torch.Size([5])
"""

import math

import torch
from torch import Tensor, nn

from flowcf.errors import UserError
from flowcf.flows.base import Flow
from flowcf.flows.distributions import PluGeNNormal

__all__ = ["AttributeFlow"]


class AttributeFlow(nn.Module):
    """A flow conditioned on :math:`K` attributes, scored given the class of the first one.

    Arguments:
        flow: A :class:`~flowcf.flows.Flow` with a PluGeN base (``base=plugen``) and :math:`K`
            context features, :math:`p_F(z \\mid a)`.
        prior: :math:`p(a_k = 1 \\mid y = c)`, shape :math:`(C, K)`.
    """

    def __init__(self, flow: nn.Module, prior: Tensor):
        super().__init__()
        if not isinstance(flow, Flow) or not isinstance(flow.base, PluGeNNormal):
            raise UserError(
                "multi-label data (data.attributes) need a flowcf flow with model.base=plugen"
            )
        if prior.shape[1] != flow.context_dim:
            raise UserError(f"{prior.shape[1]} attributes for a flow of {flow.context_dim}")
        self.flow, self.dim, self.context_dim = flow, flow.dim, prior.shape[0]
        self.register_buffer("prior", prior.float())

    def _base(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """:math:`u = f(z)` and :math:`\\log |\\det J_f(z)|`: the transforms ignore the context."""
        return self.flow(z, z.new_zeros(len(z), self.flow.context_dim))

    def log_prob(self, z: Tensor, context: Tensor) -> Tensor:
        """:math:`\\log p(z \\mid y)` in nats, (B,), for one-hot (or soft) classes (B, C)."""
        u, logabsdet = self._base(z)
        base, k = self.flow.base, self.flow.context_dim
        p = (context.to(u) @ self.prior.to(u)).clamp(0, 1)
        a, sigma = u[:, :k], base.sigma
        normal = -0.5 * math.log(2 * math.pi) - math.log(sigma)
        present = normal - 0.5 * ((a - 1) / sigma).square() + p.log()
        absent = normal - 0.5 * ((a + 1) / sigma).square() + (1 - p).log()
        rest = -0.5 * (u[:, k:].square() + math.log(2 * math.pi))
        return torch.logaddexp(present, absent).sum(1) + rest.sum(1) + logabsdet

    def sample(self, n: int, context: Tensor) -> Tensor:
        """``n`` codes given the classes (n, C): attributes drawn from the prior, then
        :math:`p_F(z \\mid a)`."""
        attributes = torch.bernoulli(context.to(self.prior) @ self.prior)
        return self.flow.sample(n, attributes)
