"""Multiscale image flows (``space=pixel``): the mathematics of every registered image flow on
tiny images in float64, dequantisation and bits/dim, and training from the command line."""

import json
import math

import pytest
import torch
from torch.nn.functional import one_hot

from flowcf.errors import UserError
from flowcf.flows import IMAGE_FLOWS, Flow
from flowcf.flows.images import bits_per_dim, dequantize, level_shapes
from flowcf.training import fit

NAMES = list(IMAGE_FLOWS)
SHAPE = (1, 4, 4)
ALPHA = 0.05


def build(name: str, context_dim: int = 0, base: str = "normal", shape=SHAPE, levels: int = 2):
    """A small float64 image flow, its ActNorms initialised on uniform images and every
    parameter perturbed away from the identity."""
    torch.manual_seed(0)
    flow = IMAGE_FLOWS.build(name, shape, context_dim, levels=levels, layers=4, hidden=8,
                             base=base, alpha=ALPHA).double()  # fmt: skip
    with torch.no_grad():
        flow(torch.rand(256, *shape, dtype=torch.float64), contexts(256, context_dim))
        for p in flow.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return flow.eval()


def contexts(n: int, classes: int) -> torch.Tensor | None:
    if not classes:
        return None
    return torch.eye(classes, dtype=torch.float64)[torch.arange(n) % classes]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("base", ["normal", "plugen"])
@pytest.mark.parametrize("context_dim", [0, 3])
def test_inverse(name: str, base: str, context_dim: int):
    flow = build(name, context_dim, base)
    x, c = torch.rand(32, *SHAPE, dtype=torch.float64), contexts(32, context_dim)
    z, _ = flow(x, c)
    assert z.shape == (32, math.prod(SHAPE))
    torch.testing.assert_close(flow.inverse(z, c), x, atol=1e-9, rtol=0)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("base", ["normal", "plugen"])
def test_logabsdet_matches_autograd_jacobian(name: str, base: str):
    flow = build(name, 3, base)
    x, c = torch.rand(3, *SHAPE, dtype=torch.float64), contexts(3, 3)
    _, logabsdet = flow(x, c)
    for i in range(3):
        jacobian = torch.autograd.functional.jacobian(
            lambda v, i=i: flow(v.view(1, *SHAPE), c[i : i + 1])[0][0], x[i].flatten()
        )
        torch.testing.assert_close(logabsdet[i], torch.linalg.slogdet(jacobian).logabsdet)


def box_integral(flow: Flow, c: torch.Tensor, points: int = 2**16) -> tuple[float, float]:
    """∫ p and −∫ p log p over the logit's domain, a box slightly larger than [0, 1]^D, by
    quasi-Monte Carlo (Sobol points)."""
    low, high = -ALPHA / (1 - 2 * ALPHA), (1 - ALPHA) / (1 - 2 * ALPHA)
    dim = math.prod(flow_shape := (1, 2, 2))
    u = torch.quasirandom.SobolEngine(dim, scramble=True, seed=0).draw(points, dtype=torch.float64)
    x = (low + (high - low) * u).view(-1, *flow_shape)
    with torch.no_grad():
        log_p = flow.log_prob(x, c.expand(points, -1))
    volume = (high - low) ** dim
    return volume * log_p.exp().mean().item(), -volume * (log_p.exp() * log_p).mean().item()


@pytest.mark.parametrize("name", NAMES)
def test_density_integrates_to_one_and_samples_follow_it(name: str):
    """On 2×2 images (4 dimensions), for two classes: the density integrates to 1 over the
    pixel box, and the mean NLL of samples is its entropy."""
    flow = build(name, 2, shape=(1, 2, 2), levels=1)
    for c in torch.eye(2, dtype=torch.float64):
        mass, entropy = box_integral(flow, c)
        assert abs(mass - 1) < 0.01
        torch.manual_seed(1)
        with torch.no_grad():
            x = flow.sample(10_000, c.expand(10_000, 2))
            nll = -flow.log_prob(x, c.expand(10_000, 2)).mean().item()
        assert x.shape == (10_000, 1, 2, 2)
        assert abs(nll - entropy) < 0.05


@pytest.mark.parametrize("name", NAMES)
def test_state_dict_round_trip_and_context(name: str):
    flow, fresh = build(name, 3), IMAGE_FLOWS.build(name, SHAPE, 3, levels=2, layers=4, hidden=8)
    fresh.double().load_state_dict(flow.state_dict())
    x = torch.rand(6, *SHAPE, dtype=torch.float64)
    c = contexts(6, 3)
    torch.testing.assert_close(fresh.eval().log_prob(x, c), flow.log_prob(x, c))
    assert not torch.allclose(flow.log_prob(x, c), flow.log_prob(x, c.roll(1, dims=1)))


def test_levels_factor_out_half_the_channels():
    assert level_shapes((1, 28, 28), 2) == [(4, 14, 14), (8, 7, 7)]
    assert level_shapes((3, 32, 32), 3) == [(12, 16, 16), (24, 8, 8), (48, 4, 4)]
    with pytest.raises(UserError, match="divisible by 8"):
        level_shapes((1, 28, 28), 3)


def test_dequantisation_and_bits_per_dim():
    x = torch.arange(256, dtype=torch.float64).repeat(40) / 255
    y = dequantize(x)
    k = torch.arange(256, dtype=torch.float64).repeat(40)
    assert ((y >= k / 256) & (y < (k + 1) / 256)).all()
    assert y.std() > 0 and not torch.equal(y, dequantize(x))
    # the uniform density on [0, 1]^D costs exactly 8 bits per 8-bit pixel
    assert bits_per_dim(torch.tensor(0.0), 784).item() == pytest.approx(8.0)
    assert bits_per_dim(torch.tensor(-784 * math.log(2)), 784).item() == pytest.approx(7.0)


@pytest.mark.parametrize("name", NAMES)
def test_training_on_dequantised_pixels_lowers_bits_per_dim(name: str):
    """60 steps on dequantised two-level images (8×8) take off at least half a bit per dim."""
    torch.manual_seed(0)
    x = (torch.rand(1200, 1, 8, 8) < torch.linspace(0.1, 0.9, 8)[:, None]).float()
    y = (x.mean(dim=(1, 2, 3)) > 0.5).long()
    (x_train, x_test), (y_train, y_test) = x.split(1000), y.split(1000)
    flow = IMAGE_FLOWS.build(name, (1, 8, 8), 2, levels=2, layers=2, hidden=16)

    def bits() -> float:
        with torch.no_grad():
            log_p = flow.eval().log_prob(dequantize(x_test), one_hot(y_test, 2).float())
        return bits_per_dim(-log_p.mean(), 64).item()

    flow.train().log_prob(dequantize(x_train[:256]), one_hot(y_train[:256], 2).float())
    before = bits()

    def loss(model, v, c):
        return -model.log_prob(dequantize(v), one_hot(c, 2).float()).mean()

    train, test = (x_train, y_train), (x_test, y_test)
    fit(flow, loss, train, test, epochs=4, batch_size=64, lr=5e-3, progress=False)
    assert bits() < before - 0.5


TINY_PIXEL = [
    "data=mnist",
    "data.size=8",
    "data.train_size=1000",
    "data.test_size=200",
    "data.val=200",
    "classifier.train.epochs=1",
    "space=pixel",
    "model.levels=2",
    "model.layers=2",
    "model.hidden=16",
    "model.train.epochs=2",
    "progress=false",
    "threads=1",
]


def test_pixel_space_from_the_cli(cli, capsys, tmp_path):
    """``flowcf train space=pixel`` writes and prints the test figures, bits/dim among them;
    a vector flow or a latent-space method in pixel space is a one-line error."""
    assert cli("train", *TINY_PIXEL, "hydra.run.dir=run") == 0
    summary = json.loads((tmp_path / "run" / "train.json").read_text())
    assert summary == json.loads(capsys.readouterr().out)
    assert 0 < summary["flow_test_bits_per_dim"] < 8  # better than the uniform density
    assert summary["flow_test_nll"] < 0

    assert cli("train", *TINY_PIXEL, "model=maf") == 2
    assert "model.name must be one of: glow, realnvp, got 'maf'" in capsys.readouterr().err
    assert cli("explain", *TINY_PIXEL, "method=place", "autoencoder.train.epochs=1") == 2
    assert "needs a flow on the space the method searches" in capsys.readouterr().err
