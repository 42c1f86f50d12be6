"""Classifiers: each factory takes the input shape (without the batch) and the number of
classes, and returns a module mapping inputs of that shape to logits of shape (B, C).

Example:
    >>> import torch
    >>> model = CLASSIFIERS.build("mlp", (2,), 3, hidden=16, depth=1)
    >>> model(torch.zeros(5, 2)).shape
    torch.Size([5, 3])
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
