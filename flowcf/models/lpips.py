r"""The LPIPS network, with its AlexNet backbone from a local file (DESIGN §7).

LPIPS compares unit-normalised AlexNet activations of two images, weighted per channel by linear
layers calibrated on human judgements. The PyPI ``lpips`` package ships those linear layers but
fetches the AlexNet backbone from a model hub, which these machines cannot reach. So the
backbone comes from a local file: torchvision's ``alexnet-owt-7be5be79.pth``, at a given path or
in torch hub's cache. Without it, a randomly initialised (seeded) backbone under the linear
layers gives a reproducible feature distance that is not LPIPS, and must be labelled so.
Used by the ``lpips``/``lpips_rand`` metrics and by PLACE's perceptual loss term.

References:
    | The Unreasonable Effectiveness of Deep Features as a Perceptual Metric (Zhang et al., 2018)
    | https://arxiv.org/abs/1801.03924
"""

import warnings
from functools import lru_cache
from pathlib import Path

import torch
from torch import Tensor, nn

from flowcf.errors import UserError

__all__ = ["BACKBONE_FILE", "LPIPSDistance", "find_backbone", "load_lpips"]

BACKBONE_FILE = "alexnet-owt-7be5be79.pth"
RANDOM_SEED = 0
MIN_SIZE = 31  # smallest side AlexNet's five conv/pool stages accept


class LPIPSDistance(nn.Module):
    r"""LPIPS(x, y) for images in [0, 1], differentiable in both arguments.

    Grayscale images are repeated to three channels and both are mapped to [-1, 1], as LPIPS
    expects. The network is frozen and in evaluation mode.

    Arguments:
        network: An ``lpips.LPIPS`` network.

    Example:
        >>> distance = load_lpips(None)  # random backbone: not LPIPS
        >>> x = torch.rand(2, 1, 32, 32)
        >>> distance(x, x)
        tensor([0., 0.])
    """

    def __init__(self, network: nn.Module):
        super().__init__()
        self.network = network.eval().requires_grad_(False)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        """Distances between image batches ``x`` and ``y`` of shape (B, C, H, W), as (B,)."""
        if min(x.shape[-2:]) < MIN_SIZE:
            raise UserError(f"LPIPS needs images of at least {MIN_SIZE}×{MIN_SIZE} pixels")
        x, y = (image.expand(-1, 3, -1, -1) * 2 - 1 for image in (x, y))
        return self.network(x, y).flatten()


def find_backbone(path: str | None = None) -> Path:
    """The AlexNet backbone file: ``path`` if given, else torch hub's cache.

    Raises:
        UserError: If the file does not exist.
    """
    candidate = Path(path or Path(torch.hub.get_dir()) / "checkpoints" / BACKBONE_FILE)
    if not candidate.is_file():
        raise UserError(
            f"lpips needs torchvision's AlexNet weights ({BACKBONE_FILE}) but {candidate} does"
            " not exist: put the file there, point metrics.lpips_backbone at it, or list"
            " lpips_rand in metrics.names instead (random backbone, not LPIPS)"
        )
    return candidate


@lru_cache
def load_lpips(backbone: str | None, device: torch.device | str = "cpu") -> LPIPSDistance:
    """The LPIPS network (AlexNet, v0.1) on ``device``, cached per process.

    Arguments:
        backbone: Path to torchvision's AlexNet state dict, or ``None`` for a randomly
            initialised backbone seeded with a fixed seed (``lpips_rand``: not LPIPS).
        device: Where the network lives.

    Returns:
        The frozen, shared network: do not train it or move it.
    """
    from lpips import LPIPS  # slow import, needed only here

    with warnings.catch_warnings(), torch.random.fork_rng(devices=[]):
        warnings.simplefilter("ignore")  # torchvision deprecates the `pretrained` flag lpips uses
        torch.manual_seed(RANDOM_SEED)
        network = LPIPS(net="alex", pretrained=True, pnet_rand=True, verbose=False)
    if backbone is not None:
        _load_backbone(network.net, backbone)
    return LPIPSDistance(network).to(device)


def _load_backbone(net: nn.Module, path: str):
    """Loads torchvision's ``features.{i}.*`` into lpips' slices, named ``slice{k}.{i}.*``."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        net.load_state_dict(
            {name: state[f"features.{name.split('.', 1)[1]}"] for name in net.state_dict()}
        )
    except Exception as error:  # a corrupt file or another network's weights
        raise UserError(
            f"{path} is not torchvision's AlexNet state dict ({BACKBONE_FILE}): {error}"
        ) from error
