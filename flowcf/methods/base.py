"""Counterfactual methods: the common interface and the batched gradient search they share.

A method explains a **batch** of factuals at once. Each factual has its own early stopping: once
it is finished it stops changing, and the loop ends when all are finished or at ``max_steps``.
"""

import time
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
from torch import Tensor
from tqdm.auto import tqdm

from flowcf.errors import UserError
from flowcf.losses import Models, build_terms
from flowcf.registry import Registry

__all__ = ["METHODS", "CounterfactualMethod", "Counterfactuals", "GradientSearch", "targets_for"]

METHODS = Registry("method")


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
        seconds: Wall-clock time for the whole batch.
    """

    x: Tensor
    x_cf: Tensor
    y: Tensor
    y_target: Tensor
    found: Tensor
    steps: Tensor
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        """Plain CPU tensors and floats, for ``torch.save``."""
        return {k: v.cpu() if isinstance(v, Tensor) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, payload: dict[str, Any]) -> "Counterfactuals":
        return cls(**{f.name: payload[f.name] for f in fields(cls)})


def targets_for(y: Tensor, target: str | int, num_classes: int) -> Tensor:
    """Target classes: ``next`` = (y + 1) mod C, or one class index for every factual."""
    if target == "next":
        return (y + 1) % num_classes
    if not isinstance(target, int) or not 0 <= target < num_classes:
        raise UserError(
            f"method.target must be 'next' or a class in 0..{num_classes - 1}, got {target!r}"
        )
    return torch.full_like(y, target)


class CounterfactualMethod:
    """Base class: ``explain(x, y, y_target)`` returns :class:`Counterfactuals`."""

    def explain(self, x: Tensor, y: Tensor, y_target: Tensor) -> Counterfactuals:
        raise NotImplementedError


class GradientSearch(CounterfactualMethod):
    """Adam on a weighted sum of registered loss terms (:mod:`flowcf.losses`), batched.

    A factual is finished when the classifier assigns its candidate to the target class and every
    hinge term is zero; its counterfactual is then frozen. A non-finite loss stops that factual
    without a counterfactual (it counts against coverage). Subclasses may change the variable
    searched over (:meth:`initial`, :meth:`decode`) or the per-sample weights (:meth:`schedule`).

    Arguments:
        models: Classifier, flow and training data.
        losses: The ``losses`` config: key → ``{name, weight, **params}``.
        lr: Adam's learning rate.
        max_steps: Step budget.
        progress: Show a progress bar.
    """

    def __init__(
        self,
        models: Models,
        *,
        losses: dict,
        lr: float,
        max_steps: int,
        progress: bool = True,
    ):
        if lr <= 0 or max_steps < 1:
            raise UserError(
                f"lr and max_steps must be positive, got lr={lr}, max_steps={max_steps}"
            )
        self.models = models
        self.terms, self.weights = build_terms(models, losses)
        self.lr, self.max_steps, self.progress = lr, max_steps, progress

    def initial(self, x: Tensor) -> Tensor:
        """The starting point of the variable searched over (the factual itself)."""
        return x

    def decode(self, variable: Tensor) -> Tensor:
        """Maps the variable searched over to a candidate counterfactual."""
        return variable

    def schedule(self, step: int, active: Tensor, weights: dict[str, Tensor]) -> None:
        """Updates per-sample term weights in place after ``step``; none by default."""

    def explain(self, x: Tensor, y: Tensor, y_target: Tensor) -> Counterfactuals:
        start = time.perf_counter()
        variable = self.initial(x).detach().clone().requires_grad_(True)
        optimizer = torch.optim.Adam([variable], lr=self.lr)
        weights = {k: torch.full_like(y, w, dtype=x.dtype) for k, w in self.weights.items()}
        result = torch.full_like(x, float("nan"))
        done = torch.zeros_like(y, dtype=torch.bool)
        failed = torch.zeros_like(done)
        steps = torch.full_like(y, self.max_steps)
        bar = tqdm(
            range(self.max_steps + 1), desc="explain", disable=not self.progress, leave=False
        )
        for step in bar:
            x_cf = self.decode(variable)
            values = {k: term(x_cf, x, y_target) for k, term in self.terms.items()}
            loss = sum(weights[k] * v for k, v in values.items())
            with torch.no_grad():
                finished = self._finished(x_cf, y_target, values) | (step == self.max_steps)
                bad = ~torch.isfinite(loss)
                newly = (finished | bad) & ~done
                result[newly & ~bad] = x_cf[newly & ~bad]
                failed |= newly & bad
                steps[newly] = step
                done |= newly
            bar.set_postfix(done=f"{int(done.sum())}/{len(done)}")
            if done.all():
                break
            optimizer.zero_grad()
            loss[~done].sum().backward()
            optimizer.step()
            self.schedule(step, ~done, weights)
        return Counterfactuals(
            x=x,
            x_cf=result,
            y=y,
            y_target=y_target,
            found=~failed,
            steps=steps,
            seconds=time.perf_counter() - start,
        )

    def _finished(self, x_cf: Tensor, y_target: Tensor, values: dict[str, Tensor]) -> Tensor:
        valid = self.models.classifier(x_cf).argmax(dim=1) == y_target
        for key, term in self.terms.items():
            if term.hinge:
                valid &= values[key] <= 0
        return valid
