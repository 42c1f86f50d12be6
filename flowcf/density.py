"""Class-conditional log densities under a flow, and the thresholds τ built from them.

A threshold τ_c per target class c is a quantile q of training log densities, by one of two
rules (:data:`THRESHOLDS`, the ``threshold`` option of ``plausibility`` and of PPCEF's
``nll_hinge``):

- ``per_class`` (flowcf's default): the q-quantile of log p(x | c) over the training points of
  class c, so every class is held to its own typical density;
- ``pooled`` (the PPCEF authors' code, ``torch.median`` over the training fold): one q-quantile
  of log p(x | y) over every training point, each scored under its own class, the same τ for
  every class.
"""

import torch
from torch import Tensor, nn
from torch.nn.functional import one_hot

__all__ = ["THRESHOLDS", "class_log_prob", "class_quantiles"]


def class_log_prob(flow: nn.Module, x: Tensor, y: Tensor, num_classes: int) -> Tensor:
    """log p(x | y) in nats, shape (B,), for a flow conditioned on the one-hot class."""
    return flow.log_prob(x, one_hot(y, num_classes).to(x.dtype))


def _per_class(log_p: Tensor, y: Tensor, num_classes: int, q: float) -> Tensor:
    return torch.stack([log_p[y == c].quantile(q) for c in range(num_classes)])


def _pooled(log_p: Tensor, y: Tensor, num_classes: int, q: float) -> Tensor:
    return log_p.quantile(q).expand(num_classes)


#: Threshold rules by name: ``(log p(x | y) of the training points, y, C, q) -> τ``, (C,).
THRESHOLDS = {"per_class": _per_class, "pooled": _pooled}


@torch.no_grad()
def class_quantiles(
    flow: nn.Module, x: Tensor, y: Tensor, num_classes: int, q: float, rule: str = "per_class"
) -> Tensor:
    """τ_c for every class c, shape (C,): the ``q``-quantile of the training log densities
    under ``rule`` (a key of :data:`THRESHOLDS`). The points are scored in chunks (``x`` may
    be :class:`~flowcf.data.streamed.StreamedImages`).
    """
    log_p = torch.cat([class_log_prob(flow, x[i], y[i], num_classes)
                       for i in torch.arange(len(y), device=y.device).split(512)])  # fmt: skip
    return THRESHOLDS[rule](log_p, y, num_classes, q)
