"""Mathematical checks of every registered flow and base: inverses, Jacobians, normalisation,
training."""

import inspect
import io
import math

import pytest
import torch
from omegaconf import OmegaConf

from flowcf.cli import CONFIG_DIR
from flowcf.errors import UserError
from flowcf.flows import BASES, FLOWS, Flow, PluGeNNormal
from flowcf.training import OBJECTIVES

NAMES = list(FLOWS)
BASE_NAMES = list(BASES)
#: Small settings, each passed to the flows that take it; tight tolerances for the ODE solver.
SMALL = {"layers": 4, "hidden": 16, "atol": 1e-9, "rtol": 1e-9}
#: Solver tolerances for tests that need no more (training, densities on a grid).
COARSE = {"atol": 1e-3, "rtol": 1e-3}


def one_hot(n: int, classes: int, seed: int = 1) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    labels = torch.randint(classes, (n,), generator=generator)
    return torch.eye(classes, dtype=torch.float64)[labels]


def small(name: str, **options) -> dict:
    """The :data:`SMALL` settings updated with ``options``, those that flow ``name`` takes."""
    accepted = inspect.signature(FLOWS.get(name)).parameters
    return {k: v for k, v in (SMALL | options).items() if k in accepted}


def build(
    name: str, dim: int, context_dim: int = 0, base: str = "normal", std: float = 0.2, **options
) -> Flow:
    """A small float64 flow whose parameters are all perturbed away from the identity, after
    any data-dependent initialisation (Glow's ActNorm) on a batch of standard normal data."""
    torch.manual_seed(0)
    flow = FLOWS.build(name, dim, context_dim, **small(name, base=base, **options)).double()
    c = one_hot(256, context_dim) if context_dim else None
    with torch.no_grad():
        flow(torch.randn(256, dim, dtype=torch.float64), c)
        for p in flow.parameters():
            p.add_(std * torch.randn_like(p))
    return flow


INVERTIBLE = [name for name in NAMES if build(name, 2).invertible]


@pytest.mark.parametrize("name", INVERTIBLE)
@pytest.mark.parametrize("base", BASE_NAMES)
@pytest.mark.parametrize("context_dim", [0, 3])
def test_inverse(name: str, base: str, context_dim: int):
    flow = build(name, 5, context_dim, base)
    x = torch.randn(64, 5, dtype=torch.float64)
    c = one_hot(64, context_dim) if context_dim else None
    z, logabsdet = flow(x, c)
    assert z.shape == x.shape and logabsdet.shape == (64,)
    assert not torch.allclose(z, x, atol=1e-3)
    torch.testing.assert_close(flow.inverse(z, c), x, atol=1e-6, rtol=0)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("base", BASE_NAMES)
@pytest.mark.parametrize("dim", [2, 3])
def test_logabsdet_matches_autograd_jacobian(name: str, base: str, dim: int):
    flow = build(name, dim, context_dim=2, base=base)
    x = torch.randn(6, dim, dtype=torch.float64)
    c = one_hot(6, 2)
    _, logabsdet = flow(x, c)
    for i in range(len(x)):
        jacobian = torch.autograd.functional.jacobian(
            lambda xi, i=i: flow(xi[None], c[i : i + 1])[0][0], x[i]
        )
        torch.testing.assert_close(logabsdet[i], torch.linalg.slogdet(jacobian).logabsdet)


def grid_density(flow: Flow, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, float]:
    """A 2D flow's density on the points of a grid over [-10, 10]², the points, and the area of
    a grid cell (so an integral is a sum over the points times the area)."""
    axis = torch.linspace(-10.0, 10.0, 301, dtype=torch.float64)
    grid = torch.cartesian_prod(axis, axis)
    with torch.no_grad():
        density = flow.log_prob(grid, context.expand(len(grid), -1)).exp()
    return density, grid, (axis[1] - axis[0]).item() ** 2


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("base", BASE_NAMES)
def test_density_integrates_to_one(name: str, base: str):
    """For each one-hot class and for a soft label."""
    flow = build(name, 2, context_dim=2, base=base, **COARSE)
    contexts = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.3, 0.7]], dtype=torch.float64)
    for c in contexts:
        density, _, area = grid_density(flow, c)
        assert abs(density.sum().item() * area - 1) < 0.01


@pytest.mark.parametrize("name", INVERTIBLE)
def test_samples_follow_the_density(name: str):
    """Samples' mean, covariance and mean NLL match the mean, covariance and entropy of the
    density integrated on a grid."""
    flow = build(name, 2, context_dim=2, **COARSE)
    c = torch.tensor([0.0, 1.0], dtype=torch.float64)
    density, grid, area = grid_density(flow, c)
    mass = density * area
    mean = mass @ grid
    covariance = (grid - mean).T @ ((grid - mean) * mass[:, None])
    entropy = -torch.xlogy(density, density).sum() * area
    torch.manual_seed(1)
    with torch.no_grad():
        x = flow.sample(20_000, c.expand(20_000, 2))
        nll = -flow.log_prob(x, c.expand(20_000, 2)).mean()
    torch.testing.assert_close(x.mean(0), mean, atol=0.05, rtol=0)
    torch.testing.assert_close(x.T.cov(), covariance, atol=0.05, rtol=0.05)
    torch.testing.assert_close(nll, entropy, atol=0.03, rtol=0)


@pytest.mark.parametrize("name", sorted(set(NAMES) - set(INVERTIBLE)))
def test_density_only_flows_refuse_to_invert(name: str):
    flow = build(name, 2)
    with pytest.raises(UserError, match="densities only"):
        flow.inverse(torch.zeros(1, 2, dtype=torch.float64))
    with pytest.raises(UserError, match="densities only"):
        flow.sample(1)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("base", BASE_NAMES)
def test_context_changes_density(name: str, base: str):
    flow = build(name, 3, context_dim=3, base=base)
    x = torch.randn(32, 3, dtype=torch.float64)
    eye = torch.eye(3, dtype=torch.float64)
    with torch.no_grad():
        a, b = (flow.log_prob(x, eye[k].expand(32, 3)) for k in (0, 1))
    assert (a - b).abs().min() > 1e-6


@pytest.mark.parametrize("name", NAMES)
def test_plugen_transforms_ignore_context(name: str):
    """With the PluGeN base the context enters through the base alone."""
    flow = build(name, 3, context_dim=2, base="plugen")
    x = torch.randn(16, 3, dtype=torch.float64)
    eye = torch.eye(2, dtype=torch.float64)
    with torch.no_grad():
        (za, ladj_a), (zb, ladj_b) = (flow(x, eye[k].expand(16, 2)) for k in (0, 1))
    assert torch.equal(za, zb) and torch.equal(ladj_a, ladj_b)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("base", BASE_NAMES)
def test_state_dict_round_trip(name: str, base: str):
    flow = build(name, 3, context_dim=2, base=base)
    buffer = io.BytesIO()
    torch.save(flow.state_dict(), buffer)
    buffer.seek(0)
    fresh = FLOWS.build(name, 3, 2, **small(name, base=base)).double()
    fresh.load_state_dict(torch.load(buffer, weights_only=True))
    x, c = torch.randn(16, 3, dtype=torch.float64), one_hot(16, 2)
    with torch.no_grad():
        assert torch.equal(fresh.log_prob(x, c), flow.log_prob(x, c))


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("base", BASE_NAMES)
def test_context_is_checked(name: str, base: str):
    flow = build(name, 2, context_dim=2, base=base)
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
def test_base_errors_are_user_errors(name: str):
    with pytest.raises(UserError, match="normal, plugen"):
        FLOWS.build(name, 2, 2, base="gaussian")
    with pytest.raises(UserError, match="at most 2 context features, got 3"):
        FLOWS.build(name, 2, 3, base="plugen")
    with pytest.raises(UserError, match=r"sigma must be a number > 0, got 0\.0"):
        FLOWS.build(name, 2, 2, base="plugen", sigma=0.0)


@pytest.mark.parametrize(
    ("name", "objective"), [(name, "mle") for name in NAMES] + [("cnf", "flow_matching")]
)
def test_fit_gaussian(name: str, objective: str):
    """Fitting N(1, 0.5² I) in 2D (data on the scale flowcf standardises to) brings the NLL to
    within 0.1 nats of its entropy."""
    torch.manual_seed(0)
    flow = FLOWS.build(name, 2, context_dim=2, **small(name, **COARSE)).double()
    loss = OBJECTIVES.get(objective)
    optimizer = torch.optim.Adam(flow.parameters(), lr=2e-2)
    c = torch.eye(2, dtype=torch.float64)[[0]].expand(256, 2)
    for _ in range(150):
        value = loss(flow, 1 + 0.5 * torch.randn(256, 2, dtype=torch.float64), c)
        optimizer.zero_grad()
        value.backward()
        optimizer.step()

    entropy = math.log(2 * math.pi * math.e * 0.5**2)
    with torch.no_grad():
        x = 1 + 0.5 * torch.randn(4096, 2, dtype=torch.float64)
        nll = -flow.log_prob(x, c[:1].expand(4096, 2)).mean().item()
    assert abs(nll - entropy) < 0.1


def test_flow_matching_needs_a_continuous_flow():
    flow = build("realnvp", 2)
    with pytest.raises(UserError, match="model=cnf"):
        OBJECTIVES.get("flow_matching")(flow, torch.zeros(4, 2, dtype=torch.float64), None)


def objective(name: str) -> str:
    """The objective a flow's config trains it by."""
    return OmegaConf.load(CONFIG_DIR / "model" / f"{name}.yaml").get("objective", "mle")


@pytest.mark.parametrize("name", INVERTIBLE)
def test_plugen_fit_prefers_the_true_class(name: str):
    """Trained (by its config's objective) on two Gaussians, one per class, placed as the base
    places the classes (so flows that cannot rotate, e.g. radial, fit them too), a PluGeN flow
    scores held-out points higher under their own class than under the other, and samples each
    class near its centre."""
    centres = torch.tensor([[2.0, -1.0], [-2.0, 1.0]], dtype=torch.float64)

    def two_gaussians(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        y = torch.randint(2, (n,))
        return centres[y] + 0.5 * torch.randn(n, 2, dtype=torch.float64), y

    torch.manual_seed(0)
    eye = torch.eye(2, dtype=torch.float64)
    flow = FLOWS.build(name, 2, context_dim=2, **small(name, base="plugen", **COARSE)).double()
    loss = OBJECTIVES.get(objective(name))
    optimizer = torch.optim.Adam(flow.parameters(), lr=1e-2)
    for _ in range(200):
        x, y = two_gaussians(256)
        value = loss(flow, x, eye[y])
        optimizer.zero_grad()
        value.backward()
        optimizer.step()

    x, y = two_gaussians(1024)
    with torch.no_grad():
        right, wrong = flow.log_prob(x, eye[y]), flow.log_prob(x, eye[1 - y])
        samples = [flow.sample(1024, eye[[k]].expand(1024, 2)) for k in (0, 1)]
    assert (right > wrong).float().mean() > 0.99
    assert (right - wrong).mean() > 10
    for centre, sample in zip(centres, samples, strict=True):
        torch.testing.assert_close(sample.median(0).values, centre, atol=0.25, rtol=0)


class TestPluGeNNormal:
    SIGMA = 0.3

    def test_log_prob_is_a_sum_of_normal_log_densities(self):
        base = PluGeNNormal(5, context_dim=3, sigma=self.SIGMA).double()
        z = torch.randn(8, 5, dtype=torch.float64)
        c = torch.rand(8, 3, dtype=torch.float64)  # soft labels; one-hot is the corner case
        c[:4] = one_hot(4, 3)
        loc = torch.cat([2 * c - 1, torch.zeros(8, 2, dtype=torch.float64)], dim=1)
        scale = torch.tensor([self.SIGMA] * 3 + [1.0] * 2, dtype=torch.float64)
        expected = torch.distributions.Normal(loc, scale).log_prob(z).sum(-1)
        torch.testing.assert_close(base.log_prob(z, c), expected)

    def test_log_prob_by_hand(self):
        """At z = (1, -1, 0) with c = (1, 0) every dimension sits at its mean."""
        base = PluGeNNormal(3, context_dim=2, sigma=self.SIGMA)
        z, c = torch.tensor([[1.0, -1.0, 0.0]]), torch.tensor([[1.0, 0.0]])
        expected = -1.5 * math.log(2 * math.pi) - 2 * math.log(self.SIGMA)
        assert base.log_prob(z, c).item() == pytest.approx(expected, rel=1e-6)

    def test_samples_match_the_moments(self):
        torch.manual_seed(0)
        base = PluGeNNormal(4, context_dim=2, sigma=self.SIGMA).double()
        n = 100_000
        samples = base.sample(n, torch.tensor([[1.0, 0.0]]).expand(n, 2))
        assert samples.shape == (n, 4) and samples.dtype == torch.float64
        mean = torch.tensor([1.0, -1.0, 0.0, 0.0], dtype=torch.float64)
        std = torch.tensor([self.SIGMA] * 2 + [1.0] * 2, dtype=torch.float64)
        torch.testing.assert_close(samples.mean(0), mean, atol=0.02, rtol=0)
        torch.testing.assert_close(samples.std(0), std, atol=0.02, rtol=0)

    def test_no_attributes_is_a_standard_normal(self):
        base = PluGeNNormal(2, context_dim=0)
        z = torch.randn(4, 2)
        expected = torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(-1)
        torch.testing.assert_close(base.log_prob(z), expected)
        assert base.sample(3).shape == (3, 2)

    def test_invalid_arguments(self):
        with pytest.raises(ValueError, match="at most 2 context features, got 3"):
            PluGeNNormal(2, context_dim=3)
        with pytest.raises(ValueError, match="sigma > 0"):
            PluGeNNormal(2, context_dim=1, sigma=-1.0)
        with pytest.raises(ValueError, match="takes 2 context features, got 3"):
            PluGeNNormal(3, context_dim=2).log_prob(torch.zeros(1, 3), torch.zeros(1, 3))
        with pytest.raises(ValueError, match="takes 2 context features, got 0"):
            PluGeNNormal(3, context_dim=2).sample(1)

    @pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
    def test_cuda(self):
        base = PluGeNNormal(3, context_dim=2).cuda()
        c = torch.eye(2, device="cuda")[[0, 1]]
        assert base.sample(2, c).device.type == "cuda"
        assert base.log_prob(torch.zeros(2, 3, device="cuda"), c).device.type == "cuda"
