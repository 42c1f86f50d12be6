"""Mathematical checks of every registered flow: inverses, Jacobians, normalisation, training."""

import io
import math

import pytest
import torch

from flowcf.flows import FLOWS, Flow

NAMES = list(FLOWS)


def build(name: str, dim: int, context_dim: int = 0, std: float = 0.2, seed: int = 0) -> Flow:
    """A small float64 flow whose parameters are all perturbed away from the identity."""
    torch.manual_seed(seed)
    flow = FLOWS.build(name, dim, context_dim, layers=4, hidden=16).double()
    with torch.no_grad():
        for p in flow.parameters():
            p.add_(std * torch.randn_like(p))
    return flow


def one_hot(n: int, classes: int, seed: int = 1) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    labels = torch.randint(classes, (n,), generator=generator)
    return torch.eye(classes, dtype=torch.float64)[labels]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("context_dim", [0, 3])
def test_inverse(name: str, context_dim: int):
    flow = build(name, 5, context_dim)
    x = torch.randn(64, 5, dtype=torch.float64)
    c = one_hot(64, context_dim) if context_dim else None
    z, logabsdet = flow(x, c)
    assert z.shape == x.shape and logabsdet.shape == (64,)
    assert not torch.allclose(z, x, atol=1e-3)
    torch.testing.assert_close(flow.inverse(z, c), x, atol=1e-6, rtol=0)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dim", [2, 3])
def test_logabsdet_matches_autograd_jacobian(name: str, dim: int):
    flow = build(name, dim, context_dim=2)
    x = torch.randn(6, dim, dtype=torch.float64)
    c = one_hot(6, 2)
    _, logabsdet = flow(x, c)
    for i in range(len(x)):
        jacobian = torch.autograd.functional.jacobian(
            lambda xi, i=i: flow(xi[None], c[i : i + 1])[0][0], x[i]
        )
        torch.testing.assert_close(logabsdet[i], torch.linalg.slogdet(jacobian).logabsdet)


@pytest.mark.parametrize("name", NAMES)
def test_density_integrates_to_one(name: str):
    flow = build(name, 2, context_dim=2)
    lim, n = 10.0, 301
    axis = torch.linspace(-lim, lim, n, dtype=torch.float64)
    grid = torch.cartesian_prod(axis, axis)
    cell = (axis[1] - axis[0]) ** 2
    with torch.no_grad():
        for label in range(2):
            c = torch.eye(2, dtype=torch.float64)[label].expand(len(grid), 2)
            mass = flow.log_prob(grid, c).exp().sum() * cell
            assert abs(mass.item() - 1) < 0.01


@pytest.mark.parametrize("name", NAMES)
def test_context_changes_density(name: str):
    flow = build(name, 2, context_dim=3)
    x = torch.randn(32, 2, dtype=torch.float64)
    eye = torch.eye(3, dtype=torch.float64)
    with torch.no_grad():
        a, b = (flow.log_prob(x, eye[k].expand(32, 3)) for k in (0, 1))
    assert (a - b).abs().min() > 1e-6


@pytest.mark.parametrize("name", NAMES)
def test_state_dict_round_trip(name: str):
    flow = build(name, 3, context_dim=2)
    buffer = io.BytesIO()
    torch.save(flow.state_dict(), buffer)
    buffer.seek(0)
    fresh = FLOWS.build(name, 3, 2, layers=4, hidden=16).double()
    fresh.load_state_dict(torch.load(buffer, weights_only=True))
    x, c = torch.randn(16, 3, dtype=torch.float64), one_hot(16, 2)
    with torch.no_grad():
        assert torch.equal(fresh.log_prob(x, c), flow.log_prob(x, c))


@pytest.mark.parametrize("name", NAMES)
def test_context_is_checked(name: str):
    flow = build(name, 2, context_dim=2)
    x = torch.randn(4, 2, dtype=torch.float64)
    with pytest.raises(ValueError, match="context"):
        flow.log_prob(x)
    with pytest.raises(ValueError, match="rows"):
        flow.sample(4, one_hot(3, 2))


@pytest.mark.parametrize("name", NAMES)
def test_unknown_option_is_a_type_error(name: str):
    with pytest.raises(TypeError):
        FLOWS.get(name)(2, hiden=16)


@pytest.mark.parametrize("name", NAMES)
def test_sample_and_fit_gaussian(name: str):
    """Fitting N(3, 2² I) in 2D brings the NLL to within 0.1 nats of its entropy."""
    torch.manual_seed(0)
    flow = FLOWS.build(name, 2, context_dim=2, layers=4, hidden=16).double()
    optimizer = torch.optim.Adam(flow.parameters(), lr=1e-2)
    c = torch.eye(2, dtype=torch.float64)[[0]].expand(256, 2)
    for _ in range(300):
        x = 3 + 2 * torch.randn(256, 2, dtype=torch.float64)
        loss = -flow.log_prob(x, c).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    entropy = math.log(2 * math.pi * math.e * 2**2)
    with torch.no_grad():
        x = 3 + 2 * torch.randn(4096, 2, dtype=torch.float64)
        nll = -flow.log_prob(x, c[:1].expand(4096, 2)).mean().item()
        samples = flow.sample(4096, c[:1].expand(4096, 2))
    assert abs(nll - entropy) < 0.1
    assert samples.shape == (4096, 2) and samples.isfinite().all()
    torch.testing.assert_close(samples.mean(0), torch.full_like(samples[0], 3.0), atol=0.2, rtol=0)
    torch.testing.assert_close(samples.std(0), torch.full_like(samples[0], 2.0), atol=0.2, rtol=0)
