"""A function over many inputs in chunks, without gradients, so memory stays bounded."""

from collections.abc import Callable

import torch
from torch import Tensor

__all__ = ["BATCH", "batched"]

BATCH = 512


def batched(function: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    """``function`` applied to ``x`` in chunks of :data:`BATCH`, without gradients."""
    with torch.no_grad():
        return torch.cat([function(chunk) for chunk in x.split(BATCH)])
