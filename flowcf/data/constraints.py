r"""The domain of encoded vector features: what a counterfactual may be.

A tabular row is encoded into :math:`D` model features: one column per numeric or ordinal
feature (scaled), one one-hot column per category. :class:`Constraints` knows which encoded
columns belong to which original feature and what a counterfactual may do with them:

* every column lies in its range :math:`[\ell_j, u_j]` (a numeric or ordinal feature's range,
  by default the training split's min and max; :math:`[0, 1]` for a one-hot column);
* immutable features (e.g. sex, nationality) never change;
* monotone features change in one direction only (age may only increase);
* a categorical feature is a valid one-hot; an integer or ordinal feature is a whole number in
  its original units (its range bounds are whole too, so rounding stays inside).

Both limits hold at once: a counterfactual is clamped into the range, and a feature that would
then move against its direction (or an immutable one) keeps the factual's value. So a factual
beyond a bound it may not move back from (an age above the training maximum, say) keeps its
own value; everything else ends inside the range.

:meth:`Constraints.project` enforces range, immutables and directions after every step of a
gradient search (a projected gradient step); :meth:`Constraints.finalize` also rounds onto valid
values, so validity is judged on what the user would see; :meth:`Constraints.satisfied` is
whether a counterfactual breaks none of them.

References:
    | Actionable Recourse in Linear Classification (Ustun, Spangher, Liu, 2019)
    | https://arxiv.org/abs/1809.06514

Examples:
    >>> c = Constraints(
    ...     feature=torch.tensor([0, 1, 1, 2]), names=["age", "sex", "amount"],
    ...     direction=torch.tensor([1, 0, 0, 0]).float(), mutable=torch.tensor([1, 0, 0, 1.0]),
    ...     integer=torch.tensor([1, 0, 0, 0.0]), shift=torch.zeros(4), scale=torch.ones(4),
    ...     low=torch.tensor([18.0, 0, 0, 0]), high=torch.tensor([90.0, 1, 1, 3]),
    ...     groups=[[1, 2]],
    ... )
    >>> x = torch.tensor([[30.0, 1, 0, 2]])
    >>> c.finalize(x, torch.tensor([[28.0, 0.2, 0.9, 3.6]]))
    tensor([[30.,  1.,  0.,  3.]])
    >>> c.satisfied(x, torch.tensor([[31.0, 1, 0, 3], [31.5, 1, 0, 3], [31.0, 1, 0, 3.6]]))
    tensor([ True, False, False])
"""

from dataclasses import dataclass, fields

import torch
from torch import Tensor
from torch.nn.functional import one_hot

__all__ = ["Constraints"]

TOLERANCE = 1e-4
"""Encoded values closer than this count as unchanged."""

WHOLE = 1e-2
"""An integer feature within this of a whole number (in its original units) is whole."""


@dataclass
class Constraints:
    """Per encoded column: its feature, its range, what may change, how to round onto valid
    values.

    Attributes:
        feature: Index of the original feature of each encoded column, (D,).
        names: The original feature names, (F,).
        direction: +1 may only increase, −1 may only decrease, 0 either way, (D,).
        mutable: 1 where the column may change, 0 for immutable features, (D,).
        integer: 1 for integer and ordinal columns, rounded in original units, (D,).
        shift, scale: The scaler, original = encoded · scale + shift, (D,).
        low, high: The range of each column, encoded (±inf: no bound), (D,).
        groups: The encoded columns of each categorical feature (one one-hot each).
    """

    feature: Tensor
    names: list[str]
    direction: Tensor
    mutable: Tensor
    integer: Tensor
    shift: Tensor
    scale: Tensor
    low: Tensor
    high: Tensor
    groups: list[list[int]]

    @classmethod
    def box(cls, names: list[str], low: Tensor, high: Tensor, shift: Tensor, scale: Tensor):
        """Continuous features that may take any value in ``[low, high]`` (encoded), (D,)."""
        zeros = torch.zeros(len(names))
        return cls(feature=torch.arange(len(names)), names=list(names), direction=zeros,
                   mutable=zeros + 1, integer=zeros, shift=shift, scale=scale, low=low,
                   high=high, groups=[])  # fmt: skip

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
        """Candidates clamped into the range; immutable columns, and columns that would move
        against their direction, back to the factual's.

        Arguments:
            x: Factuals, (B, D) or (B, S, D) broadcastable against ``x_cf``.
            x_cf: Candidates, (..., D).
        """
        x_cf = torch.clamp(x_cf, self.low, self.high)
        keep = (self.mutable > 0) & ((x_cf - x) * self.direction >= 0)
        return torch.where(keep, x_cf, x)

    def finalize(self, x: Tensor, x_cf: Tensor) -> Tensor:
        """:meth:`project`, then one-hot argmax per categorical and rounding of integers."""
        x_cf = self.project(x, x_cf)
        raw = torch.round(x_cf * self.scale + self.shift)
        x_cf = torch.where(self.integer > 0, (raw - self.shift) / self.scale, x_cf)
        for group in self.groups:
            x_cf[..., group] = one_hot(x_cf[..., group].argmax(dim=-1), len(group)).to(x_cf)
        return self.project(x, x_cf)

    def satisfied(self, x: Tensor, x_cf: Tensor) -> Tensor:
        """Whether each counterfactual breaks no constraint: in range, immutables kept,
        monotone features moved their way, valid one-hots, whole integers, (...,).

        That is, :meth:`finalize` leaves it as it is: within :data:`TOLERANCE` (encoded), and
        integers within :data:`WHOLE` in their original units.
        """
        whole = torch.minimum(torch.full_like(self.scale, TOLERANCE), WHOLE / self.scale)
        tolerance = torch.where(self.integer > 0, whole, TOLERANCE)
        return ((self.finalize(x, x_cf) - x_cf).abs() <= tolerance).all(dim=-1)

    def changed(self, x: Tensor, x_cf: Tensor) -> Tensor:
        """Whether each original feature differs between factual and counterfactual, (..., F)."""
        moved = ((x_cf - x).abs() > TOLERANCE).to(x_cf)
        shape = (*moved.shape[:-1], len(self.names))
        index = self.feature.expand_as(moved)
        return moved.new_zeros(shape).scatter_reduce(-1, index, moved, "amax") > 0
