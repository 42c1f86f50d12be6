"""Classifiers: each factory takes the input shape (without the batch) and the number of
classes, and returns a module mapping inputs of that shape to logits of shape (B, C).

Examples:
    >>> import torch
    >>> model = CLASSIFIERS.build("mlp", (2,), 3, hidden=16, depth=1)
    >>> model(torch.zeros(5, 2)).shape
    torch.Size([5, 3])
    >>> CLASSIFIERS.build("cnn", (1, 32, 32), 10)(torch.zeros(5, 1, 32, 32)).shape
    torch.Size([5, 10])
    >>> CLASSIFIERS.build("resnet34", (3, 64, 64), 2)(torch.zeros(5, 3, 64, 64)).shape
    torch.Size([5, 2])
"""

import math
from itertools import pairwise
from pathlib import Path

import torch
from torch import Tensor, nn

from flowcf.errors import UserError
from flowcf.registry import Registry
from flowcf.rules import Count, Fraction, Natural

__all__ = ["CLASSIFIERS", "predict_proba"]

CLASSIFIERS = Registry("classifier")


def predict_proba(classifier: nn.Module, x: Tensor) -> Tensor:
    """Class probabilities, shape (B, C)."""
    return classifier(x).softmax(dim=-1)


@CLASSIFIERS.register("mlp")
def mlp(
    shape: tuple[int, ...], num_classes: int, *, hidden: Count = 64, depth: Natural = 2
) -> nn.Module:
    """A multilayer perceptron on the flattened input, ``depth`` hidden ReLU layers of width
    ``hidden``."""
    widths = [math.prod(shape)] + [hidden] * depth
    layers: list[nn.Module] = [nn.Flatten()]
    for a, b in pairwise(widths):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers, nn.Linear(widths[-1], num_classes))


@CLASSIFIERS.register("logreg")
def logreg(shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """Multinomial logistic regression: one linear layer on the flattened input."""
    return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(shape), num_classes))


@CLASSIFIERS.register("cnn")
def cnn(
    shape: tuple[int, ...],
    num_classes: int,
    *,
    channels: Count = 16,
    hidden: Count = 128,
    dropout: Fraction = 0.25,
) -> nn.Module:
    """A small LeNet-style convolutional network for images of shape ``(C, H, W)``.

    Two blocks of a 3 x 3 convolution (``channels``, then ``2 * channels`` filters), ReLU and
    2 x 2 max pooling, then a ReLU layer of width ``hidden`` and the logits, with dropout before
    both linear layers. No batch normalisation, so the function it computes depends on
    ``.eval()`` only through dropout.

    References:
        | Gradient-based learning applied to document recognition (LeCun et al., 1998)
        | https://doi.org/10.1109/5.726791
    """
    c, h, w = shape
    widths = [c, channels, 2 * channels]
    layers: list[nn.Module] = []
    for a, b in pairwise(widths):
        layers += [nn.Conv2d(a, b, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
        h, w = h // 2, w // 2
    return nn.Sequential(
        *layers,
        nn.Flatten(),
        nn.Dropout(dropout),
        nn.Linear(widths[-1] * h * w, hidden),
        nn.ReLU(),
        nn.Dropout(dropout),
        nn.Linear(hidden, num_classes),
    )


#: ImageNet's channel means and standard deviations, which torchvision's ResNets expect.
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


class Normalize(nn.Module):
    """Maps images in [0, 1] to ImageNet's standardised inputs (grayscale to three channels)."""

    def __init__(self):
        super().__init__()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(3, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        return (x.expand(-1, 3, -1, -1) - self.mean) / self.std


@CLASSIFIERS.register("resnet34")
def resnet34(shape: tuple[int, ...], num_classes: int, *, weights: str | None = None) -> nn.Module:
    """torchvision's ResNet-34 on images in [0, 1] (ImageNet-normalised inside), as PLACE's
    CelebA classifier.

    ``weights`` is a local state dict to start from (nothing is downloaded): torchvision's
    ImageNet file ``resnet34-b627a593.pth`` (its 1000-class head is replaced by a new one) or a
    ResNet-34 already trained for these classes. ``None``: random initialisation.

    References:
        | Deep Residual Learning for Image Recognition (He et al., 2016)
        | https://arxiv.org/abs/1512.03385
    """
    from torchvision.models import resnet34 as build  # slow import, needed only here

    model = build(weights=None, num_classes=num_classes)
    if weights is not None:
        path = Path(weights).expanduser()
        if not path.is_file():
            raise UserError(
                f"classifier.weights: {path} does not exist; give a ResNet-34 state dict (e.g."
                " torchvision's resnet34-b627a593.pth) or weights=null to train from scratch"
            )
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            if state["fc.weight"].shape[0] != num_classes:  # another head: keep the new one
                state = {k: v for k, v in state.items() if not k.startswith("fc.")}
            missing, unexpected = model.load_state_dict(state, strict=False)
            if unexpected or set(missing) - {"fc.weight", "fc.bias"}:
                raise ValueError(f"missing {missing}, unexpected {unexpected}")
        except Exception as error:  # a corrupt file or another network's weights
            raise UserError(f"{path} is not a ResNet-34 state dict: {error}") from None
    return nn.Sequential(Normalize(), model)
