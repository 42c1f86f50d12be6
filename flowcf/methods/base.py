"""Counterfactual methods: the common interface and the batched gradient search they share.

A method explains a **batch** of factuals at once. Each factual has its own early stopping: once
it is finished it stops changing, and the loop ends when all are finished or at ``max_steps``.
"""

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields, replace
from typing import Annotated, Any

import torch
from torch import Tensor
from tqdm.auto import tqdm

from flowcf.data.constraints import Constraints
from flowcf.errors import UserError
from flowcf.losses import Candidate, Models, Terms, build_terms
from flowcf.models.autoencoders import input_space
from flowcf.registry import Registry
from flowcf.rules import Count, Natural, Positive, one_of

__all__ = [
    "METHODS",
    "TARGETS",
    "CounterfactualMethod",
    "Counterfactuals",
    "GradientSearch",
    "targets_for",
]

METHODS = Registry("method")

UNFINISHED = ("last", "valid", "none")
"""Values of ``unfinished``: what a factual without a finished candidate returns."""


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


class CounterfactualMethod:
    """Base class: ``explain(x, y, y_target)`` returns :class:`Counterfactuals`.

    ``fit_seconds`` is the time the method spent fitting its own models (0 for none).
    """

    fit_seconds: float = 0.0

    def explain(self, x: Tensor, y: Tensor, y_target: Tensor) -> Counterfactuals:
        raise NotImplementedError


class GradientSearch(CounterfactualMethod):
    """Adam on a weighted sum of registered loss terms (:mod:`flowcf.losses`), batched.

    With an autoencoder in ``models`` the search runs in its latent space, starting from the
    factual's code ``E(x)`` and scoring the decoded candidate ``G(z')``; without one it runs in
    the input space, starting from the factual itself.

    With the data's :class:`~flowcf.data.constraints.Constraints` (tabular data), the losses
    score, and the search returns, each candidate as the user would see it: inside the features'
    domain, with valid one-hot categories and whole integers (:meth:`feasible`, applied to the
    decoded candidate, so in a latent space too). A search on the inputs themselves (no
    autoencoder, or the identity) also projects every step onto the domain (range, immutables,
    monotone directions), and clamps it into the data's bounds (image pixels in [0, 1]).

    A candidate is *finished* when the classifier assigns it to the target class and every hinge
    term is zero. With ``patience=0`` a factual stops at its first finished candidate; otherwise
    it keeps the finished candidate with the lowest loss and stops after ``patience`` steps
    without a better one. A finished factual stops changing. A non-finite loss stops a factual;
    it keeps a counterfactual only if it had found one before.

    Arguments:
        models: Classifier, flow, autoencoder and training data.
        losses: The ``losses`` config: key → ``{name, weight, **params}``.
        lr: Adam's learning rate.
        max_steps: Step budget.
        patience: Steps without a better finished candidate before a factual stops.
        unfinished: What a factual with no finished candidate after ``max_steps`` returns:
            ``last`` (its last candidate, which may be invalid), ``valid`` (its lowest-loss
            candidate the classifier assigns to the target, ignoring the other hinges; else the
            last) or ``none`` (no counterfactual).
        progress: Show a progress bar.
    """

    def __init__(
        self,
        models: Models,
        *,
        losses: Terms,
        lr: Positive,
        max_steps: Count,
        patience: Natural = 0,
        unfinished: Annotated[str, one_of(*UNFINISHED)] = "last",
        progress: bool = True,
    ):
        self.models = models
        start = time.perf_counter()
        self.terms, self.weights = build_terms(models, losses)  # CLARITY's ensemble trains here
        self.fit_seconds = time.perf_counter() - start
        self.lr, self.max_steps, self.patience = lr, max_steps, patience
        self.unfinished, self.progress = unfinished, progress
        #: Whether the variable searched over is the input (no autoencoder, or the identity).
        self.on_inputs = input_space(models.autoencoder) is None
        self.constraints = models.constraints
        self.bounds = models.bounds if self.on_inputs else None

    def initial(self, x: Tensor) -> Tensor:
        """The starting point of the search: the factual or its latent code."""
        autoencoder = self.models.autoencoder
        return x if autoencoder is None else autoencoder.encode(x)

    def decode(self, variable: Tensor) -> Tensor:
        """Maps the variable searched over to a candidate in the input space."""
        autoencoder = self.models.autoencoder
        return variable if autoencoder is None else autoencoder.decode(variable)

    def schedule(self, step: int, active: Tensor, weights: dict[str, Tensor]) -> None:
        """Updates per-sample term weights in place after ``step``; none by default."""

    def feasible(self, x: Tensor, x_cf: Tensor) -> Tensor:
        """The counterfactual the user would get for candidate ``x_cf``: actionable, with valid
        categories and integers under the data's constraints (``x_cf`` itself without). Its
        gradient is that of ``x_cf`` (straight-through), so the losses score what the user gets.
        """
        if self.constraints is None:
            return x_cf
        return self.constraints.finalize(x, x_cf.detach()) + (x_cf - x_cf.detach())

    def explain(
        self,
        x: Tensor,
        y: Tensor,
        y_target: Tensor,
        on_step: Callable[[int, Tensor], None] | None = None,
    ) -> Counterfactuals:
        """Explains the batch; ``on_step(step, x_cf)``, if given, sees every step's candidates
        (e.g. to draw the optimisation trajectory; a factual's own steps end at ``steps``)."""
        start = time.perf_counter()
        with torch.no_grad():
            z = self.initial(x)
        variable = z.clone().requires_grad_(True)
        optimizer = torch.optim.Adam([variable], lr=self.lr)
        weights = {k: torch.full_like(y, w, dtype=x.dtype) for k, w in self.weights.items()}
        result, fallback = torch.full_like(x, float("nan")), torch.full_like(x, float("nan"))
        best = torch.full_like(y, float("inf"), dtype=x.dtype)
        fallback_loss = best.clone()
        improved_at = torch.zeros_like(y)
        done = torch.zeros_like(y, dtype=torch.bool)
        steps = torch.full_like(y, self.max_steps)
        bar = tqdm(
            range(self.max_steps + 1), desc="explain", disable=not self.progress, leave=False
        )
        for step in bar:
            x_cf = self.feasible(x, self.decode(variable))
            if on_step is not None:
                on_step(step, x_cf.detach().clone())
            candidate = Candidate(x, x_cf, z, x_cf if self.on_inputs else variable, y_target)
            values = {k: term(candidate) for k, term in self.terms.items()}
            loss = sum(weights[k] * v for k, v in values.items())
            with torch.no_grad():
                bad = ~torch.isfinite(loss) & ~done
                valid = self.models.classifier(x_cf).argmax(dim=1) == y_target
                accepted = valid & (loss < fallback_loss) & ~done & ~bad
                fallback[accepted], fallback_loss[accepted] = x_cf[accepted], loss[accepted]
                better = valid & self._hinges_met(values) & (loss < best) & ~done & ~bad
                result[better], best[better], improved_at[better] = (
                    x_cf[better],
                    loss[better],
                    step,
                )
                stop = bad | (best.isfinite() & (step - improved_at >= self.patience))
                if step == self.max_steps:
                    last = ~done & ~stop & best.isinf() & (self.unfinished != "none")
                    if self.unfinished == "valid":
                        rescued = last & fallback_loss.isfinite()
                        result[rescued], last = fallback[rescued], last & ~rescued
                    result[last] = x_cf[last]
                    stop = torch.ones_like(stop)
                steps[stop & ~done] = step
                done |= stop
            bar.set_postfix(done=f"{int(done.sum())}/{len(done)}")
            if done.all():
                break
            optimizer.zero_grad()
            loss[~done].sum().backward()
            optimizer.step()
            with torch.no_grad():
                if self.constraints is not None and self.on_inputs:
                    variable.copy_(self.constraints.project(x, variable))
                if self.bounds is not None:
                    variable.clamp_(*self.bounds)
            self.schedule(step, ~done, weights)
        return Counterfactuals(
            x=x,
            x_cf=result,
            y=y,
            y_target=y_target,
            found=result.flatten(1).isfinite().all(dim=1),
            steps=steps,
            seconds=time.perf_counter() - start,
            fit_seconds=self.fit_seconds,
        )

    def _hinges_met(self, values: dict[str, Tensor]) -> Tensor:
        """Whether every hinge term is zero, (B,)."""
        met = torch.ones_like(next(iter(values.values())), dtype=torch.bool)
        for key, term in self.terms.items():
            if term.hinge:
                met &= values[key] <= 0
        return met
