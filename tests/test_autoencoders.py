"""Tests for the convolutional autoencoders and the image classifier."""

from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf
from torch.distributions import Normal, kl_divergence
from torch.nn.functional import cross_entropy

from flowcf.errors import UserError
from flowcf.networks import AUTOENCODERS, CLASSIFIERS
from flowcf.networks.autoencoders import ConvVAE
from flowcf.training import fit

CONF = Path(__file__).parents[1] / "conf"
SHAPES = [(1, 32, 32), (3, 64, 64)]
TINY = {"latent_dim": 8, "channels": 8}


def squares(n: int, shape: tuple[int, ...] = (1, 16, 16), seed: int = 0):
    """Images of one bright square in a random quadrant; the label is the quadrant."""
    generator = torch.Generator().manual_seed(seed)
    c, h, w = shape
    y = torch.randint(0, 4, (n,), generator=generator)
    x = torch.rand(n, c, h, w, generator=generator) * 0.1
    for i, label in enumerate(y.tolist()):
        top, left = (label // 2) * h // 2 + 2, (label % 2) * w // 2 + 2
        x[i, :, top : top + h // 4, left : left + w // 4] = 1.0
    return x, y


@pytest.mark.parametrize("name", ["conv_ae", "conv_vae"])
def test_configs_build_registered_models(name):
    cfg = OmegaConf.to_container(OmegaConf.load(CONF / "autoencoder" / f"{name}.yaml"))
    assert cfg["name"] == name and name in AUTOENCODERS
    assert set(cfg["train"]) == {"epochs", "batch_size", "lr", "weight_decay", "patience"}
    options = {k: v for k, v in cfg.items() if k not in ("name", "train")}
    model = AUTOENCODERS.build(name, (1, 32, 32), **options)
    assert model.encode(torch.rand(2, 1, 32, 32)).shape == (2, cfg["latent_dim"])


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", ["conv_ae", "conv_vae"])
def test_shapes(name, shape):
    model = AUTOENCODERS.build(name, shape, **TINY).eval()
    x = torch.rand(3, *shape)

    z = model.encode(x)
    x_hat = model.decode(z)
    assert z.shape == (3, 8)
    assert x_hat.shape == x.shape and x_hat.min() >= 0 and x_hat.max() <= 1
    assert torch.equal(model(x), x_hat)
    loss = model.loss(x)
    assert loss.shape == () and torch.isfinite(loss)
    # In eval mode (batch norm on running statistics) codes do not depend on the batch.
    assert torch.allclose(model.encode(x[:1]), z[:1], atol=1e-5)


def test_depth_and_divisibility():
    for shape, depth in [((1, 32, 32), 3), ((3, 64, 64), 4), ((1, 28, 28), 2)]:
        encoder = AUTOENCODERS.build("conv_ae", shape, **TINY).encoder
        assert sum(isinstance(m, torch.nn.Conv2d) for m in encoder) == depth
    model = AUTOENCODERS.build("conv_ae", (1, 32, 32), depth=2, **TINY)
    assert model.decode(torch.zeros(1, 8)).shape == (1, 1, 32, 32)
    with pytest.raises(UserError, match="divisible"):
        AUTOENCODERS.build("conv_ae", (1, 30, 30), depth=2)
    with pytest.raises(UserError, match="beta"):
        AUTOENCODERS.build("conv_ae", (1, 32, 32), beta=1.0)  # only the VAE has a beta


def test_vae_posterior_and_negative_elbo():
    torch.manual_seed(0)
    model: ConvVAE = AUTOENCODERS.build("conv_vae", (1, 32, 32), beta=0.5, **TINY).eval()
    x = torch.rand(4, 1, 32, 32)

    mu, logvar = model.posterior(x)
    assert mu.shape == logvar.shape == (4, 8)
    assert torch.equal(model.encode(x), mu)

    torch.manual_seed(1)
    loss = model.loss(x)
    torch.manual_seed(1)
    z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
    kl = kl_divergence(Normal(mu, (0.5 * logvar).exp()), Normal(0.0, 1.0)).sum(dim=1)
    expected = (model.reconstruction_nll(x, z) + 0.5 * kl).mean()
    assert torch.allclose(loss, expected, rtol=1e-5)


def test_reconstruction_nll_is_the_summed_bernoulli_nll():
    model = AUTOENCODERS.build("conv_ae", (1, 32, 32), **TINY).eval()
    x = torch.rand(2, 1, 32, 32).round()
    z = model.encode(x)
    p = model.decode(z)
    expected = -(x * p.log() + (1 - x) * (1 - p).log()).sum(dim=(1, 2, 3))
    assert torch.allclose(model.reconstruction_nll(x, z), expected, rtol=1e-4)


@pytest.mark.parametrize("name", ["conv_ae", "conv_vae"])
def test_training_reduces_the_loss(name):
    torch.manual_seed(0)
    x, y = squares(256)
    model = AUTOENCODERS.build(name, (1, 16, 16), **TINY)
    with torch.no_grad():
        before = model.eval().loss(x).item()

    summary = fit(
        model,
        lambda m, x, y: m.loss(x),
        (x, y),
        squares(64, seed=1),
        epochs=25,
        batch_size=32,
        lr=3e-3,
        progress=False,
    )  # 200 steps

    assert summary["best_val_loss"] < 0.6 * before
    with torch.no_grad():
        assert (model.decode(model.encode(x)) - x).square().mean() < 0.02


@pytest.mark.parametrize("shape", SHAPES)
def test_cnn_logits(shape):
    model = CLASSIFIERS.build("cnn", shape, 7, channels=4, hidden=16).eval()
    assert model(torch.rand(5, *shape)).shape == (5, 7)


def test_cnn_config_and_learning():
    cfg = OmegaConf.to_container(OmegaConf.load(CONF / "classifier" / "cnn.yaml"))
    assert cfg["name"] == "cnn" and "cnn" in CLASSIFIERS
    assert set(cfg["train"]) == {"epochs", "batch_size", "lr", "weight_decay", "patience"}

    torch.manual_seed(0)
    x, y = squares(256)
    model = CLASSIFIERS.build("cnn", (1, 16, 16), 4, channels=8, hidden=32)
    fit(
        model,
        lambda m, x, y: cross_entropy(m(x), y),
        (x, y),
        squares(64, seed=1),
        epochs=10,
        batch_size=32,
        lr=3e-3,
        progress=False,
    )
    x_test, y_test = squares(128, seed=2)
    with torch.no_grad():
        assert (model(x_test).argmax(dim=1) == y_test).float().mean() > 0.95


def test_a_convolutional_autoencoder_of_vectors_is_a_user_error():
    """REVISE and CLARITY on a table would search a conv VAE of 61 features: one clear line."""
    for name in ("conv_ae", "conv_vae"):
        with pytest.raises(UserError, match=r"for images \(C, H, W\), got inputs of shape"):
            AUTOENCODERS.build(name, (61,))
