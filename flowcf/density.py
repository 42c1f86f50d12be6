"""Class-conditional log densities under a flow, and the thresholds τ built from them."""

import torch
from torch import Tensor, nn
from torch.nn.functional import one_hot

__all__ = ["class_log_prob", "class_quantiles"]


def class_log_prob(flow: nn.Module, x: Tensor, y: Tensor, num_classes: int) -> Tensor:
    """log p(x | y) in nats, shape (B,), for a flow conditioned on the one-hot class."""
    return flow.log_prob(x, one_hot(y, num_classes).to(x.dtype))


@torch.no_grad()
def class_quantiles(flow: nn.Module, x: Tensor, y: Tensor, num_classes: int, q: float) -> Tensor:
    """The ``q``-quantile of log p(x | c) over the points of each class c, shape (C,).

    PPCEF's plausibility threshold τ is the median (``q=0.5``) over the training data, scored
    in chunks (``x`` may be :class:`~flowcf.data.streamed.StreamedImages`).
    """
    log_p = torch.cat([class_log_prob(flow, x[i], y[i], num_classes)
                       for i in torch.arange(len(y), device=y.device).split(512)])  # fmt: skip
    return torch.stack([log_p[y == c].quantile(q) for c in range(num_classes)])
