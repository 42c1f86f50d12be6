"""Counterfactual methods: the common interface and the batched gradient search they share.

A method explains a **batch** of factuals at once. Each factual has its own early stopping: once
it is finished it stops changing, and the loop ends when all are finished or at ``max_steps``.
"""

import time
from collections.abc import Callable
from typing import Annotated

import torch
from torch import Tensor
from tqdm.auto import tqdm

from flowcf.counterfactuals import Counterfactuals
from flowcf.losses import Candidate, Terms, build_terms
from flowcf.networks.autoencoders import input_space
from flowcf.registry import Registry
from flowcf.rules import Count, Natural, Positive, one_of
from flowcf.setting import Setting

__all__ = ["METHODS", "CounterfactualMethod", "GradientSearch"]

METHODS = Registry("method")

UNFINISHED = ("last", "valid", "none")
"""Values of ``unfinished``: what a factual without a finished candidate returns."""


class CounterfactualMethod:
    """Base class: ``explain(x, y, y_target)`` returns :class:`Counterfactuals`.

    ``fit_seconds`` is the time the method spent fitting its own models (0 for none).
    """

    fit_seconds: float = 0.0

    def explain(self, x: Tensor, y: Tensor, y_target: Tensor) -> Counterfactuals:
        raise NotImplementedError


class GradientSearch(CounterfactualMethod):
    """Adam on a weighted sum of registered loss terms (:mod:`flowcf.losses`), batched.

    With a ``latent`` autoencoder in ``setting`` the search runs in its latent space, starting
    from the factual's code ``E(x)`` and scoring the decoded candidate ``G(z')``; without one it
    runs in the input space, starting from the factual itself.

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
        setting: Classifier, flow, ``latent`` autoencoder and training data.
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
        setting: Setting,
        *,
        losses: Terms,
        lr: Positive,
        max_steps: Count,
        patience: Natural = 0,
        unfinished: Annotated[str, one_of(*UNFINISHED)] = "last",
        progress: bool = True,
    ):
        self.setting = setting
        start = time.perf_counter()
        self.terms, self.weights = build_terms(setting, losses)  # CLARITY's ensemble trains here
        self.fit_seconds = time.perf_counter() - start
        self.lr, self.max_steps, self.patience = lr, max_steps, patience
        self.unfinished, self.progress = unfinished, progress
        #: Whether the variable searched over is the input (no autoencoder, or the identity).
        self.on_inputs = input_space(setting.latent) is None
        self.constraints = setting.constraints
        self.bounds = setting.bounds if self.on_inputs else None

    def initial(self, x: Tensor) -> Tensor:
        """The starting point of the search: the factual or its latent code."""
        autoencoder = self.setting.latent
        return x if autoencoder is None else autoencoder.encode(x)

    def decode(self, variable: Tensor) -> Tensor:
        """Maps the variable searched over to a candidate in the input space."""
        autoencoder = self.setting.latent
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
                valid = self.setting.classifier(x_cf).argmax(dim=1) == y_target
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
