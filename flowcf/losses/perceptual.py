"""PLACE's perceptual term."""

import logging
from typing import Annotated

from flowcf.losses.base import LOSSES, LossTerm
from flowcf.networks.lpips import NETS, find_backbone, load_lpips
from flowcf.rules import one_of
from flowcf.setting import Setting

log = logging.getLogger(__name__)


@LOSSES.register("lpips")
class Perceptual(LossTerm):
    """PLACE's perceptual term LPIPS(x, x') between factual and candidate images (PLACE, eq. 5).

    ``net``: ``alex`` or ``vgg``; ``backbone``: a torchvision state dict of that net, ``None``
    for the pretrained weights :func:`flowcf.networks.lpips.find_backbone` finds, or ``"random"``
    for LPIPS's linear layers over a random (seeded) AlexNet, a feature distance that is not
    LPIPS.
    """

    def __init__(
        self,
        setting: Setting,
        backbone: str | None = None,
        net: Annotated[str, one_of(*NETS)] = "alex",
    ):
        if backbone == "random":
            log.warning("the lpips loss uses a random AlexNet backbone: it is not LPIPS")
            path, net = None, "alex"
        else:
            path = str(find_backbone(backbone, net))
        self.distance = load_lpips(path, next(setting.classifier.parameters()).device, net)

    def __call__(self, c):
        return self.distance(c.x, c.x_cf)
