"""The result of explaining a batch of factuals, whichever method made it and whichever metric
scores it."""

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import torch
from torch import Tensor

from flowcf.data.constraints import Constraints

__all__ = ["Counterfactuals"]


@dataclass
class Counterfactuals:
    """The result of explaining a batch of B factuals.

    Attributes:
        x: Factuals, (B, ...).
        x_cf: Counterfactuals, (B, ...); rows of NaN where none was found.
        y: Classes the classifier assigns to the factuals, (B,).
        y_target: Target classes, (B,).
        found: Whether the method returned a counterfactual, (B,).
        steps: Optimisation steps each factual took, (B,).
        seconds: Wall-clock time of the search over the whole batch.
        fit_seconds: Wall-clock time the method spent fitting models of its own before the
            search (CLARITY's ensemble, DiCoFlex's flow), counted even when a stored one was
            loaded; shared models (classifier, autoencoders, the flow p_F) are not counted.
        alternatives: Several counterfactuals per factual, best first, (B, S, ...), rows of NaN
            where there are fewer; ``None`` for methods that give one (``x_cf``).
    """

    x: Tensor
    x_cf: Tensor
    y: Tensor
    y_target: Tensor
    found: Tensor
    steps: Tensor
    seconds: float
    fit_seconds: float = 0.0
    alternatives: Tensor | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain CPU tensors and floats, for ``torch.save``."""
        return {k: v.cpu() if isinstance(v, Tensor) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, payload: dict[str, Any]) -> "Counterfactuals":
        return cls(**{f.name: payload[f.name] for f in fields(cls) if f.name in payload})

    def within(self, constraints: Constraints | None) -> "Counterfactuals":
        """The counterfactuals moved onto the data's domain by ``constraints.finalize``
        (:class:`~flowcf.data.constraints.Constraints`; unchanged if they are in it, rows of
        NaN stay), so that whatever a method returns, nothing leaves the domain."""
        if constraints is None:
            return self
        constraints = constraints.to(self.x.device)

        def onto(x: Tensor, x_cf: Tensor) -> Tensor:
            finite = x_cf.isfinite().all(dim=-1, keepdim=True)
            return torch.where(finite, constraints.finalize(x, x_cf.nan_to_num()), x_cf)

        alternatives = self.alternatives
        if alternatives is not None:
            alternatives = onto(self.x[:, None], alternatives)
        return replace(self, x_cf=onto(self.x, self.x_cf), alternatives=alternatives)

    @property
    def ranked(self) -> Tensor:
        """Every counterfactual, best first, (B, S, ...): the alternatives, or ``x_cf``."""
        return self.x_cf[:, None] if self.alternatives is None else self.alternatives
