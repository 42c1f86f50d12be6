"""Classifiers: each factory takes the input shape (without the batch) and the number of
classes, and returns a module mapping inputs of that shape to logits of shape (B, C).

Example:
    >>> import torch
    >>> model = CLASSIFIERS.build("mlp", (2,), 3, hidden=16, depth=1)
    >>> model(torch.zeros(5, 2)).shape
    torch.Size([5, 3])
    >>> CLASSIFIERS.build("cnn", (1, 32, 32), 10)(torch.zeros(5, 1, 32, 32)).shape
    torch.Size([5, 10])
"""

import math
from itertools import pairwise

from torch import Tensor, nn

from flowcf.registry import Registry

__all__ = ["CLASSIFIERS", "predict_proba"]

CLASSIFIERS = Registry("classifier")


def predict_proba(classifier: nn.Module, x: Tensor) -> Tensor:
    """Class probabilities, shape (B, C)."""
    return classifier(x).softmax(dim=-1)


@CLASSIFIERS.register("mlp")
def mlp(
    shape: tuple[int, ...], num_classes: int, *, hidden: int = 64, depth: int = 2
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
    channels: int = 16,
    hidden: int = 128,
    dropout: float = 0.25,
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
