r"""Actionability and validity constraints of encoded tabular features.

A tabular row is encoded into :math:`D` model features: one column per numeric or ordinal
feature (scaled), one one-hot column per category. :class:`Constraints` knows which encoded
columns belong to which original feature and what a counterfactual may do with them:

* immutable features (e.g. sex, nationality) never change;
* monotone features change in one direction only (age may only increase);
* a categorical feature is a valid one-hot; an integer or ordinal feature is a whole number in
  its original units.

:meth:`Constraints.project` enforces the first two after every step of a gradient search (a
projected gradient step); :meth:`Constraints.finalize` also rounds onto valid values, so
validity is judged on what the user would see.

References:
    | Actionable Recourse in Linear Classification (Ustun, Spangher, Liu, 2019)
    | https://arxiv.org/abs/1809.06514

Example:
    >>> c = Constraints(
    ...     feature=torch.tensor([0, 1, 1, 2]), names=["age", "sex", "amount"],
    ...     direction=torch.tensor([1, 0, 0, 0]).float(), mutable=torch.tensor([1, 0, 0, 1.0]),
    ...     integer=torch.tensor([1, 0, 0, 0.0]), shift=torch.zeros(4), scale=torch.ones(4),
    ...     groups=[[1, 2]],
    ... )
    >>> x = torch.tensor([[30.0, 1, 0, 5]])
    >>> c.finalize(x, torch.tensor([[28.0, 0.2, 0.9, 2.6]]))
    tensor([[30.0000,  1.0000,  0.0000,  2.6000]])
"""

from dataclasses import dataclass, fields

import torch
from torch import Tensor
from torch.nn.functional import one_hot

__all__ = ["Constraints"]

TOLERANCE = 1e-4
"""Encoded values closer than this count as unchanged."""


@dataclass
class Constraints:
    """Per encoded column: its feature, what may change, and how to round onto valid values.

    Attributes:
        feature: Index of the original feature of each encoded column, (D,).
        names: The original feature names, (F,).
        direction: +1 may only increase, −1 may only decrease, 0 either way, (D,).
        mutable: 1 where the column may change, 0 for immutable features, (D,).
        integer: 1 for integer and ordinal columns, rounded in original units, (D,).
        shift, scale: The scaler, original = encoded · scale + shift, (D,).
        groups: The encoded columns of each categorical feature (one one-hot each).
    """

    feature: Tensor
    names: list[str]
    direction: Tensor
    mutable: Tensor
    integer: Tensor
    shift: Tensor
    scale: Tensor
    groups: list[list[int]]

    def to(self, device: torch.device | str) -> "Constraints":
        """The same constraints with their tensors on ``device``."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        return Constraints(**{k: v.to(device) if torch.is_tensor(v) else v
                              for k, v in values.items()})  # fmt: skip

    @property
    def immutable_features(self) -> Tensor:
        """Whether each original feature is immutable, (F,)."""
        immutable = torch.zeros(len(self.names), dtype=torch.bool, device=self.feature.device)
        immutable[self.feature] = self.mutable == 0
        return immutable

    def project(self, x: Tensor, x_cf: Tensor) -> Tensor:
        """Immutable columns back to the factual's, monotone ones clamped to their direction.

        Arguments:
            x: Factuals, (B, D) or (B, S, D) broadcastable against ``x_cf``.
            x_cf: Candidates, (..., D).
        """
        step = (x_cf - x) * self.mutable
        step = torch.where(step * self.direction < 0, torch.zeros_like(step), step)
        return x + step

    def finalize(self, x: Tensor, x_cf: Tensor) -> Tensor:
        """:meth:`project`, then one-hot argmax per categorical and rounding of integers."""
        x_cf = self.project(x, x_cf)
        raw = torch.round(x_cf * self.scale + self.shift)
        x_cf = torch.where(self.integer > 0, (raw - self.shift) / self.scale, x_cf)
        for group in self.groups:
            x_cf[..., group] = one_hot(x_cf[..., group].argmax(dim=-1), len(group)).to(x_cf)
        return self.project(x, x_cf)

    def changed(self, x: Tensor, x_cf: Tensor) -> Tensor:
        """Whether each original feature differs between factual and counterfactual, (..., F)."""
        moved = ((x_cf - x).abs() > TOLERANCE).to(x_cf)
        shape = (*moved.shape[:-1], len(self.names))
        index = self.feature.expand_as(moved)
        return moved.new_zeros(shape).scatter_reduce(-1, index, moved, "amax") > 0
