"""Classifiers for vector data: each returns logits of shape (B, C).

Example:
    >>> import torch
    >>> model = CLASSIFIERS.build("mlp", 2, 3, hidden=16, depth=1)
    >>> model(torch.zeros(5, 2)).shape
    torch.Size([5, 3])
"""

from itertools import pairwise

from torch import Tensor, nn

from flowcf.registry import Registry

__all__ = ["CLASSIFIERS", "predict_proba"]

CLASSIFIERS = Registry("classifier")


def predict_proba(classifier: nn.Module, x: Tensor) -> Tensor:
    """Class probabilities, shape (B, C)."""
    return classifier(x).softmax(dim=-1)


@CLASSIFIERS.register("mlp")
def mlp(in_features: int, num_classes: int, *, hidden: int = 64, depth: int = 2) -> nn.Module:
    """A multilayer perceptron with ``depth`` hidden layers of width ``hidden`` and ReLU."""
    widths = [in_features] + [hidden] * depth
    layers: list[nn.Module] = []
    for a, b in pairwise(widths):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers, nn.Linear(widths[-1], num_classes))


@CLASSIFIERS.register("logreg")
def logreg(in_features: int, num_classes: int) -> nn.Module:
    """Multinomial logistic regression: one linear layer returning logits."""
    return nn.Linear(in_features, num_classes)
