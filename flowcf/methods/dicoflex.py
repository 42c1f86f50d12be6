r"""DiCoFlex: diverse counterfactuals sampled from a conditional flow, with control at inference.

A conditional flow :math:`q(x' \mid x, m, p, y')` is trained on the :math:`K` nearest neighbours
of each training point among the training points the classifier assigns to :math:`y'`, under

.. math:: d_{p,m}(x, x') = \alpha \sum_j m_j |x_j - x'_j|^p + \sum_j (1 - m_j) |x_j - x'_j|^p ,

with the mask :math:`m` and :math:`p` drawn at random, so both are inputs of the flow and are
**chosen at inference** (``method.mask=[...]``, ``method.p=1``). For each factual the flow draws
``num_samples`` candidates at ``temperature``; masked features are reset to the factual's (the
flow only prefers to keep them), the candidates are finalized onto the data's domain
(:class:`~flowcf.data.constraints.Constraints`: range, immutables, monotone directions, valid
categories, whole integers), and the valid, distinct ones are kept, ranked by ``select``
(:data:`SELECT`): ``closest`` (flowcf's default) by :math:`d_{p,m}`, ``confident`` (the
authors' code) by the classifier's probability of the target, highest first. The first is the
counterfactual. Everything is batched over factuals. ``time`` is the sampling alone; the flow's
training is ``fit_time``.

The context is :math:`(x, m, p, \text{one-hot}(y'))`; the flow is any registered one
(:data:`~flowcf.flows.FLOWS`) with that context size.

References:
    | DiCoFlex: Model-agnostic diverse counterfactuals with flexible control
    | (Furman, Movsum-zada, Marszalek, Zięba, Śmieja, NeurIPS 2025)
"""

import logging
import time
from typing import Annotated

import torch
from torch import Tensor
from torch.nn.functional import one_hot

from flowcf.counterfactuals import Counterfactuals
from flowcf.errors import UserError
from flowcf.flows import FLOWS
from flowcf.methods.base import METHODS, CounterfactualMethod
from flowcf.networks.classifiers import predict_proba
from flowcf.rules import Count, Fraction, Node, Positive, each, one_of, rule_of
from flowcf.setting import Setting
from flowcf.training import check_train, fit

__all__ = ["SELECT", "DiCoFlex", "weighted_distance"]

log = logging.getLogger(__name__)

CHUNK = 256
"""Queries per block of the neighbour search."""

#: How candidates are ranked, by ``method.select``: ``(distance, target probability) -> rank
#: key``, lowest first (B, S).
SELECT = {
    "closest": lambda distance, probability: distance,
    "confident": lambda distance, probability: -probability,
}


def weighted_distance(x: Tensor, x_cf: Tensor, mask: Tensor, p: Tensor, alpha: float) -> Tensor:
    """:math:`d_{p,m}` between ``x`` (..., D) and ``x_cf`` (..., D); ``mask`` broadcasts against
    them and ``p`` against their batch shape."""
    weight = alpha * mask + (1 - mask)
    return (weight * (x_cf - x).abs().pow(p[..., None])).sum(dim=-1)


@METHODS.register("dicoflex")
class DiCoFlex(CounterfactualMethod):
    """Trains the conditional flow on construction (or loads it through ``setting.cache``:
    the mask, p and sampling settings are not part of its key); :meth:`explain` samples from it.

    Arguments:
        setting: Classifier, training data and the data's constraints.
        flow: The flow config: ``name`` in :data:`~flowcf.flows.FLOWS` and its options.
        train: Training settings of :func:`~flowcf.training.fit`.
        neighbours: :math:`K`, target-class neighbours per (point, mask, p).
        alpha: :math:`\\alpha`, the weight of masked features in :math:`d_{p,m}`.
        p_values: The values of :math:`p` drawn in training.
        mask_rate: The probability that training masks a feature.
        draws: Random (mask, p) draws per training point and target class.
        mask: The features to keep at inference (names); ``None``: the immutable ones.
        p: :math:`p` at inference.
        num_samples: Candidates per factual.
        temperature: The base distribution's scale when sampling.
        select: The ranking of the valid candidates, a key of :data:`SELECT`.
        progress: Show progress bars.
    """

    def __init__(
        self,
        setting: Setting,
        *,
        flow: Annotated[dict, Node(lambda key, node: FLOWS.check_node(key, node, skip=2))],
        train: Annotated[dict, Node(check_train)],
        neighbours: Count = 16,
        alpha: Positive = 100.0,
        p_values: Annotated[list[float], each(rule_of(Positive))] = (1.0, 2.0),
        mask_rate: Fraction = 0.5,
        draws: Count = 4,
        mask: list[str] | None = None,
        p: Positive = 1.0,
        num_samples: Count = 100,
        temperature: Positive = 0.8,
        select: Annotated[str, one_of(*SELECT)] = "closest",
        progress: bool = True,
    ):
        self.setting, self.alpha, self.progress = setting, alpha, progress
        self.dim = setting.x_train.shape[1]
        self.columns = self._columns()
        self.mask, self.p = self._inference_mask(mask), p
        self.num_samples, self.temperature, self.select = num_samples, temperature, select
        options = {k: v for k, v in flow.items() if k != "name"}
        context = 2 * self.dim + 1 + setting.num_classes
        self.flow = FLOWS.build(flow["name"], self.dim, context, **options)
        self.flow.to(setting.x_train.device)

        def create():
            start = time.perf_counter()
            pairs = self._neighbour_pairs(neighbours, list(p_values), mask_rate, draws)
            summary = self._fit(*pairs, train)
            seconds = time.perf_counter() - start
            return {"state_dict": self.flow.state_dict(), "fit_seconds": seconds}, summary

        settings = dict(flow=flow, train=train, neighbours=neighbours, alpha=alpha,
                        p_values=list(p_values), mask_rate=mask_rate, draws=draws)  # fmt: skip
        fetch = setting.cache or (lambda name, spec, build: build()[0])
        payload = fetch("dicoflex", settings, create)
        self.flow.load_state_dict(payload["state_dict"])
        self.flow.eval().requires_grad_(False)
        self.fit_seconds = payload["fit_seconds"]  # a stored flow still costs its training

    def _columns(self) -> Tensor:
        """The original feature of each model column (each column its own without constraints)."""
        constraints = self.setting.constraints
        if constraints is None:
            return torch.arange(self.dim, device=self.setting.x_train.device)
        return constraints.feature

    def _inference_mask(self, names: list[str] | None) -> Tensor:
        constraints = self.setting.constraints
        if constraints is None:
            if names:
                raise UserError("dicoflex: method.mask names features of tabular data only")
            return torch.zeros(self.dim, device=self.columns.device)
        if names is None:
            return constraints.immutable_features[self.columns].float()
        unknown = sorted(set(names) - set(constraints.names))
        if unknown:
            raise UserError(
                f"dicoflex: unknown features in method.mask: {', '.join(unknown)}; choose from: "
                + ", ".join(constraints.names)
            )
        chosen = torch.tensor([n in names for n in constraints.names], device=self.columns.device)
        return chosen[self.columns].float()

    def context(self, x: Tensor, mask: Tensor, p: Tensor, y_target: Tensor) -> Tensor:
        """The flow's context ``(x, m, p, one-hot(y'))``, (B, 2D + 1 + C)."""
        target = one_hot(y_target, self.setting.num_classes).to(x)
        return torch.cat([x, mask.expand_as(x), p[:, None].to(x), target], dim=1)

    @torch.no_grad()
    def _neighbour_pairs(
        self, k: int, p_values: list[float], mask_rate: float, draws: int
    ) -> tuple[Tensor, Tensor]:
        """Training pairs: each (point, target class, mask, p) with its K nearest target-class
        neighbours under :math:`d_{p,m}` (targets by the classifier's predictions)."""
        x = self.setting.x_train
        predicted = self.setting.classifier(x).argmax(dim=1)
        targets, contexts = [], []
        for c in range(self.setting.num_classes):
            pool, queries = x[predicted == c], x[predicted != c].repeat(draws, 1)
            if len(pool) < k or not len(queries):
                raise UserError(
                    f"dicoflex: the classifier assigns {len(pool)} training points to class {c},"
                    f" fewer than method.neighbours={k}"
                )
            features = int(self.columns.max()) + 1
            masks = (torch.rand(len(queries), features, device=x.device) < mask_rate).float()
            masks = masks[:, self.columns]
            index = torch.randint(len(p_values), (len(queries),), device=x.device)
            p = torch.as_tensor(p_values, device=x.device, dtype=x.dtype)[index]
            nearest = torch.cat([
                weighted_distance(q[:, None], pool, m[:, None], pp[:, None], self.alpha)
                .topk(k, dim=1, largest=False).indices
                for q, m, pp in zip(queries.split(CHUNK), masks.split(CHUNK), p.split(CHUNK),
                                    strict=True)
            ])  # fmt: skip
            target = torch.full((len(queries),), c, device=x.device)
            contexts.append(self.context(queries, masks, p, target).repeat_interleave(k, dim=0))
            targets.append(pool[nearest.flatten()])
        return torch.cat(targets), torch.cat(contexts)

    def _fit(self, targets: Tensor, contexts: Tensor, train: dict) -> dict[str, float]:
        """Maximum likelihood of the neighbours given their contexts; 10 % of pairs validate."""
        order = torch.randperm(len(targets), device=targets.device)
        val, fit_rows = order[: len(order) // 10], order[len(order) // 10 :]
        summary = fit(
            self.flow,
            lambda flow, x, c: -flow.log_prob(x, c).mean(),
            (targets[fit_rows], contexts[fit_rows]),
            (targets[val], contexts[val]),
            **train,
            progress=self.progress,
            desc="train dicoflex flow",
        )
        log.info("DiCoFlex flow: %d neighbour pairs, %s", len(targets), summary)
        return summary

    @torch.no_grad()
    def explain(self, x: Tensor, y: Tensor, y_target: Tensor) -> Counterfactuals:
        start = time.perf_counter()
        (b, d), s = x.shape, self.num_samples
        p = torch.full((b,), self.p, device=x.device, dtype=x.dtype)
        context = self.context(x, self.mask, p, y_target).repeat_interleave(s, dim=0)
        noise = self.temperature * torch.randn(b * s, d, device=x.device, dtype=x.dtype)
        samples = self.flow.inverse(noise, context).view(b, s, d)
        samples = torch.where(self.mask > 0, x[:, None], samples)  # masked features stay
        if self.setting.constraints is not None:
            samples = self.setting.constraints.finalize(x[:, None], samples)
        proba = predict_proba(self.setting.classifier, samples.flatten(0, 1)).view(b, s, -1)
        valid = (proba.argmax(dim=2) == y_target[:, None]) & samples.isfinite().all(dim=2)
        valid &= _first_occurrences(samples)
        distance = weighted_distance(x[:, None], samples, self.mask, p[:, None], self.alpha)
        target = proba.gather(2, y_target[:, None, None].expand(-1, s, 1)).squeeze(2)
        key = SELECT[self.select](distance, target)
        order = key.masked_fill(~valid, float("inf")).argsort(dim=1, stable=True)
        ranked = samples.gather(1, order[..., None].expand(-1, -1, d))
        ranked[~valid.gather(1, order)] = float("nan")
        return Counterfactuals(
            x=x,
            x_cf=ranked[:, 0],
            y=y,
            y_target=y_target,
            found=valid.any(dim=1),
            steps=torch.zeros_like(y),
            seconds=time.perf_counter() - start,
            fit_seconds=self.fit_seconds,
            alternatives=ranked,
        )


def _first_occurrences(samples: Tensor, decimals: int = 4) -> Tensor:
    """Whether each sample (B, S, D) is the first of its factual's equal samples (rounded)."""
    b, s = samples.shape[:2]
    rows = torch.cat([
        torch.arange(b, device=samples.device).repeat_interleave(s)[:, None].to(samples),
        samples.flatten(0, 1).round(decimals=decimals),
    ], dim=1)  # fmt: skip
    _, group = torch.unique(rows, dim=0, return_inverse=True)
    position = torch.arange(b * s, device=samples.device)
    first = torch.full_like(position, b * s).scatter_reduce(0, group, position, "amin")
    return (first[group] == position).view(b, s)
