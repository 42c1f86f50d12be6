"""Counterfactual methods: the common interface and the batched gradient search they share.

A method explains a **batch** of factuals at once. Each factual has its own early stopping: once
it is finished it stops changing, and the loop ends when all are finished or at ``max_steps``.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass
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

__all__ = ["METHODS", "CounterfactualMethod", "GradientSearch", "Search"]

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


ADAM_BETAS, ADAM_EPS = (0.9, 0.999), 1e-8
"""torch.optim.Adam's defaults."""


@dataclass
class Search:
    """The factuals still searching, as rows ``index`` of the batch, with everything the search
    keeps per factual. :meth:`keep` drops the rows that stopped, so every step computes on the
    active factuals alone; Adam's moments are rows here too (:meth:`descend`), so dropping some
    factuals changes nothing for the others.

    Attributes:
        index: The rows of the batch these factuals are, (A,).
        x, z, y_target: Factuals, their starting points and targets.
        variable: The variable searched over, a leaf that requires gradients.
        weights: Per-factual term weights, by term key.
        result: The best finished candidate (NaN: none yet), and ``best`` its loss (inf).
        improved_at: The step ``result`` was found.
        fallback: The lowest-loss candidate the classifier accepts, and ``fallback_loss``.
        exp_avg, exp_avg_sq: Adam's moment estimates of ``variable``'s gradient.
    """

    index: Tensor
    x: Tensor
    z: Tensor
    y_target: Tensor
    variable: Tensor
    weights: dict[str, Tensor]
    result: Tensor
    best: Tensor
    improved_at: Tensor
    fallback: Tensor
    fallback_loss: Tensor
    exp_avg: Tensor
    exp_avg_sq: Tensor

    @classmethod
    def start(cls, x: Tensor, z: Tensor, y_target: Tensor, weights: dict[str, float]) -> "Search":
        """Every factual searching from ``z``, nothing found yet."""
        nan, inf = (
            torch.full_like(x, float("nan")),
            torch.full_like(y_target, float("inf"), dtype=x.dtype),
        )
        return cls(
            index=torch.arange(len(x), device=x.device),
            x=x,
            z=z,
            y_target=y_target,
            variable=z.clone().requires_grad_(True),
            weights={k: torch.full_like(inf, w) for k, w in weights.items()},
            result=nan,
            best=inf,
            improved_at=torch.zeros_like(y_target),
            fallback=nan.clone(),
            fallback_loss=inf.clone(),
            exp_avg=torch.zeros_like(z),
            exp_avg_sq=torch.zeros_like(z),
        )

    def keep(self, rows: Tensor) -> None:
        """Keeps only the factuals of mask ``rows``."""
        for name, value in list(vars(self).items()):
            if isinstance(value, Tensor):
                setattr(self, name, value.detach()[rows])
        self.variable.requires_grad_(True)
        self.weights = {k: w[rows] for k, w in self.weights.items()}

    def descend(self, grad: Tensor, step: int, lr: float) -> None:
        """Adam's ``step``-th update (Kingma & Ba, 2015, https://arxiv.org/abs/1412.6980), in
        the operations of ``torch.optim.Adam`` so it gives the same numbers."""
        beta1, beta2 = ADAM_BETAS
        self.exp_avg.lerp_(grad, 1 - beta1)
        self.exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        denominator = (self.exp_avg_sq.sqrt() / (1 - beta2**step) ** 0.5).add_(ADAM_EPS)
        self.variable.addcdiv_(self.exp_avg, denominator, value=-lr / (1 - beta1**step))


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

    def schedule(self, step: int, weights: dict[str, Tensor]) -> None:
        """Updates the searching factuals' term weights in place after ``step``; none by
        default."""

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
            search = Search.start(x, self.initial(x), y_target, self.weights)
        x_cf = torch.full_like(x, float("nan"))
        steps = torch.full_like(y, self.max_steps)
        latest = x.clone()
        bar = tqdm(
            range(self.max_steps + 1), desc="explain", disable=not self.progress, leave=False
        )
        for step in bar:
            candidate = self.candidate(search)
            if on_step is not None:
                latest[search.index] = candidate.x_cf.detach()
                on_step(step, latest.clone())
            values = {k: term(candidate) for k, term in self.terms.items()}
            loss = sum(search.weights[k] * v for k, v in values.items())
            with torch.no_grad():
                stop = self._record(step, search, candidate, loss, values)
                x_cf[search.index[stop]] = search.result[stop]
                steps[search.index[stop]] = step
            bar.set_postfix(done=f"{len(x) - int((~stop).sum())}/{len(x)}")
            if stop.all():
                break
            (grad,) = torch.autograd.grad(loss[~stop].sum(), search.variable)
            with torch.no_grad():
                if stop.any():
                    search.keep(~stop)
                    grad = grad[~stop]
                search.descend(grad, step + 1, self.lr)
                if self.constraints is not None and self.on_inputs:
                    search.variable.copy_(self.constraints.project(search.x, search.variable))
                if self.bounds is not None:
                    search.variable.clamp_(*self.bounds)
            self.schedule(step, search.weights)
        return Counterfactuals(
            x=x,
            x_cf=x_cf,
            y=y,
            y_target=y_target,
            found=x_cf.flatten(1).isfinite().all(dim=1),
            steps=steps,
            seconds=time.perf_counter() - start,
            fit_seconds=self.fit_seconds,
        )

    def candidate(self, search: Search) -> Candidate:
        """The candidates of the searching factuals, as the losses score them."""
        x_cf = self.feasible(search.x, self.decode(search.variable))
        z_cf = x_cf if self.on_inputs else search.variable
        return Candidate(search.x, x_cf, search.z, z_cf, search.y_target)

    def _record(
        self, step: int, search: Search, c: Candidate, loss: Tensor, values: dict[str, Tensor]
    ) -> Tensor:
        """Keeps each factual's best candidates so far; returns which factuals stop, (A,)."""
        x_cf, bad = c.x_cf.detach(), ~torch.isfinite(loss)
        valid = (self.setting.classifier(x_cf).argmax(dim=1) == c.y_target) & ~bad
        accepted = valid & (loss < search.fallback_loss)
        search.fallback[accepted], search.fallback_loss[accepted] = x_cf[accepted], loss[accepted]
        better = valid & self._hinges_met(values) & (loss < search.best)
        search.result[better], search.best[better] = x_cf[better], loss[better]
        search.improved_at[better] = step
        stop = bad | (search.best.isfinite() & (step - search.improved_at >= self.patience))
        if step < self.max_steps:
            return stop
        if self.unfinished != "none":
            last = ~stop & search.best.isinf()
            rescued = last & search.fallback_loss.isfinite() & (self.unfinished == "valid")
            search.result[rescued] = search.fallback[rescued]
            search.result[last & ~rescued] = x_cf[last & ~rescued]
        return torch.ones_like(stop)

    def _hinges_met(self, values: dict[str, Tensor]) -> Tensor:
        """Whether every hinge term is zero, (B,)."""
        met = torch.ones_like(next(iter(values.values())), dtype=torch.bool)
        for key, term in self.terms.items():
            if term.hinge:
                met &= values[key] <= 0
        return met
