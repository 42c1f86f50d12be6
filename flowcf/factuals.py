"""Which points a run explains, and the class each should move to."""

import torch
from torch import Tensor

from flowcf.errors import UserError

__all__ = ["TARGETS", "select_factuals", "targets_for"]


#: Target rules by name, ``(y, C) -> y'``: ``next`` = (y + 1) mod C; ``flip`` = |1 − y|, the
#: PPCEF authors' code (0 ↔ 1 for two classes; with more, class k ≥ 1 goes to k − 1).
TARGETS = {
    "next": lambda y, num_classes: (y + 1) % num_classes,
    "flip": lambda y, num_classes: (1 - y).abs(),
}


def targets_for(y: Tensor, target: str | int, num_classes: int) -> Tensor:
    """Target classes: by a rule of :data:`TARGETS`, or one class index for every factual."""
    if target in TARGETS:
        return TARGETS[target](y, num_classes)
    if not isinstance(target, int) or not 0 <= target < num_classes:
        raise UserError(
            f"method.target must be one of {', '.join(TARGETS)} or a class in "
            f"0..{num_classes - 1}, got {target!r}"
        )
    return torch.full_like(y, target)


def select_factuals(
    x: Tensor,
    y: Tensor,
    target: str | int,
    num_classes: int,
    *,
    explained: int | None = None,
    limit: int | None = None,
    pairs: list[list[int]] | None = None,
    split: str = "test",
) -> tuple[Tensor, Tensor, Tensor]:
    """The factuals among inputs ``x`` that the classifier assigns to classes ``y``: the chosen
    inputs, their classes and their target classes.

    ``pairs`` (e.g. MNIST's 0→8, 1→5, ``data.pairs``) gives (class, target) pairs with ``limit``
    factuals each; otherwise the points of class ``explained`` (``None``: all,
    ``factuals.class``) go to ``target`` (:func:`targets_for`), at most ``limit``
    (``factuals.limit``). ``split`` names where ``x`` comes from, in errors.
    """
    if pairs:
        if max(max(pair) for pair in pairs) >= num_classes:
            raise UserError(f"data.pairs must be [class, other class] in 0..{num_classes - 1}")
        chosen = [(torch.nonzero(y == a).squeeze(1)[:limit], b) for a, b in pairs]
        index = torch.cat([i for i, _ in chosen])
        y_target = torch.cat([torch.full_like(i, b) for i, b in chosen])
    else:
        keep = y == explained if explained is not None else torch.ones_like(y) > 0
        y_target = targets_for(y, target, num_classes)
        index = torch.nonzero(keep & (y_target != y)).squeeze(1)[:limit]
        y_target = y_target[index]
    if len(index) == 0:
        raise UserError(
            f"no factuals: the classifier assigns no {split} point to the chosen classes; "
            "change factuals.class or data.pairs"
        )
    return x[index], y[index], y_target
