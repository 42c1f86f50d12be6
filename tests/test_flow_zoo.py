"""What the individual flows of the zoo promise beyond the registry-wide checks of
``test_flows.py``: autoregressive structure, constraints, estimators, initialisation, adapters."""

import pytest
import torch
import zuko

from flowcf.flows import FLOWS, Flow, StandardNormal
from flowcf.flows.autoregressive import MADE, autoregressive_orders
from flowcf.flows.cnf import ContinuousTransform
from flowcf.flows.glow import ActNorm
from flowcf.flows.planar import Planar
from flowcf.flows.zuko_adapter import ZukoTransform


def perturb(module: torch.nn.Module, std: float = 0.3) -> None:
    with torch.no_grad():
        for p in module.parameters():
            p.add_(std * torch.randn_like(p))


def test_made_outputs_depend_only_on_earlier_features():
    torch.manual_seed(0)
    order = torch.tensor([2, 0, 3, 1])
    made = MADE(order, context_dim=2, outputs_per_feature=2, hidden=16).double()
    perturb(made)
    x, c = torch.randn(4, dtype=torch.float64), torch.randn(2, dtype=torch.float64)
    jacobian = torch.autograd.functional.jacobian(lambda v: made(torch.cat([v, c])[None])[0], x)
    allowed = order[None, :] < order.repeat(2)[:, None]  # output (kind, i) may see j iff o_j < o_i
    assert (jacobian[~allowed] == 0).all()
    assert (jacobian[allowed] != 0).all()


def test_random_orders_are_permutations_and_survive_a_state_dict():
    torch.manual_seed(0)
    orders = autoregressive_orders(5, 3, random=True)
    assert all(sorted(order.tolist()) == list(range(5)) for order in orders)
    assert len({tuple(order.tolist()) for order in orders}) > 1
    flow = FLOWS.build("maf", 5, layers=3, hidden=8, random_order=True)
    fresh = FLOWS.build("maf", 5, layers=3, hidden=8, random_order=True)
    fresh.load_state_dict(flow.state_dict())
    z = torch.randn(7, 5)
    torch.testing.assert_close(fresh.inverse(z), flow.inverse(z))


def test_actnorm_initialises_from_the_first_training_batch():
    torch.manual_seed(0)
    actnorm = ActNorm(3)
    x = 5 + 3 * torch.randn(512, 3)
    y, _ = actnorm(x)
    torch.testing.assert_close(y.mean(0), torch.zeros(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(y.std(0, correction=0), torch.ones(3), atol=1e-5, rtol=0)
    y2, _ = actnorm(x + 1)  # initialised once: later batches are shifted, not renormalised
    torch.testing.assert_close(
        y2.mean(0), (1 / (x.std(0, correction=0) + 1e-6)), atol=1e-4, rtol=0
    )


def test_actnorm_in_eval_mode_is_not_initialised():
    actnorm = ActNorm(2).eval()
    x = torch.randn(8, 2) + 4
    assert torch.equal(actnorm(x)[0], x) and not actnorm.initialized


def test_planar_stays_invertible_against_its_direction():
    """With u = -10 w the raw map would fold; the constraint wᵀû > -1 keeps det J > 0."""
    torch.manual_seed(0)
    layer = Planar(2).double()
    with torch.no_grad():
        w = torch.tensor([1.0, 0.5], dtype=torch.float64)
        layer.params.bias.copy_(torch.cat([w, -10 * w, torch.zeros(1, dtype=torch.float64)]))
    x = torch.randn(16, 2, dtype=torch.float64)
    _, logabsdet = layer(x)
    for i in range(len(x)):
        jacobian = torch.autograd.functional.jacobian(lambda v: layer(v[None])[0][0], x[i])
        assert torch.linalg.det(jacobian) > 0
        torch.testing.assert_close(logabsdet[i], torch.linalg.slogdet(jacobian).logabsdet)


def test_hutchinson_trace_is_unbiased():
    """Averaged over many probes, Hutchinson's log-determinant matches the exact one."""
    torch.manual_seed(0)
    exact = ContinuousTransform(4, hidden=16, trace="exact").double()
    perturb(exact)
    estimated = ContinuousTransform(4, hidden=16, trace="hutchinson").double()
    estimated.load_state_dict(exact.state_dict())
    x = torch.randn(1, 4, dtype=torch.float64)
    with torch.no_grad():
        _, truth = exact(x)
        _, samples = estimated(x.expand(4000, 4))
    assert samples.std() > 1e-3  # a real estimator, not the exact trace
    assert abs(samples.mean() - truth) < 4 * samples.std() / 4000**0.5


def test_cnf_auto_trace_is_exact_for_small_dimensions():
    assert FLOWS.build("cnf", 2).transforms[0].trace.__name__ == "exact_trace"
    assert FLOWS.build("cnf", 32).transforms[0].trace.__name__ == "hutchinson_trace"


def test_zuko_adapter_matches_zuko():
    """With the standard normal base the adapter's density is zuko's own."""
    torch.manual_seed(0)
    model = zuko.flows.NSF(3, 2, transforms=2, hidden_features=[16]).double()
    perturb(model)
    flow = Flow([ZukoTransform(model.transform, 2)], StandardNormal(3), 2).double()
    x, c = torch.randn(8, 3, dtype=torch.float64), torch.randn(8, 2, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(flow.log_prob(x, c), model(c).log_prob(x))


@pytest.mark.parametrize("name", ["maf", "glow", "cnf", "zuko_nsf"])
def test_flows_run_on_cuda(name: str):
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    flow = FLOWS.build(name, 3, 2).cuda()
    c = torch.eye(2, device="cuda")[[0, 1, 1]]
    assert flow.log_prob(torch.randn(3, 3, device="cuda"), c).device.type == "cuda"
    assert flow.sample(3, c).device.type == "cuda"
