"""A :class:`Session` holds one run's parts and builds each once, on first use.

Data first; then the trained :class:`~flowcf.parts.Parts` (classifier, autoencoders, flow);
then each method's counterfactuals, also kept in the artifact store, so ``evaluate`` finds what
``explain`` made.
"""

import logging
import sys
from dataclasses import replace
from functools import cached_property, wraps
from pathlib import Path

import torch
from omegaconf import DictConfig, open_dict
from torch import Tensor

from flowcf.batching import batched
from flowcf.checks import PIPELINE
from flowcf.config import options, plain
from flowcf.counterfactuals import Counterfactuals
from flowcf.data import DATASETS, Dataset
from flowcf.environment import resolve_device, seed_everything, set_threads
from flowcf.factuals import select_factuals
from flowcf.methods import METHODS, CounterfactualMethod
from flowcf.metrics.fid import find_inception
from flowcf.networks.autoencoders import input_space
from flowcf.networks.lpips import find_backbone
from flowcf.parts import Parts
from flowcf.setting import Setting
from flowcf.store import Store

__all__ = ["Session"]

log = logging.getLogger(__name__)


def per_session(method):
    """Caches a :class:`Session` method's results by its arguments on the session itself, so
    that they go with it (``functools.cache`` would keep every session alive)."""

    @wraps(method)
    def cached(self, *args):
        results = self.__dict__.setdefault(f"_{method.__name__}", {})
        if args not in results:
            results[args] = method(self, *args)
        return results[args]

    return cached


class Session:
    """Everything one run needs, each part built (or loaded) on first use.

    Arguments:
        cfg: The composed config.
        run_dir: The run's output directory.
    """

    def __init__(self, cfg: DictConfig, run_dir: str | Path):
        self.cfg, self.run_dir = cfg, Path(run_dir)
        set_threads(cfg.threads)
        self.device = resolve_device(cfg.device)
        self.store = Store(cfg.paths.store)
        self.progress = bool(cfg.progress) and sys.stderr.isatty()
        seed_everything(cfg.seed)

    def fold(self, index: int) -> "Session":
        """The session of cross-validation fold ``index`` (``data.fold``), in ``fold<index>/``."""
        cfg = self.cfg.copy()
        with open_dict(cfg):
            cfg.data.fold = index
        return Session(cfg, self.run_dir / f"fold{index}")

    @cached_property
    def data(self) -> Dataset:
        data = DATASETS.build(self.cfg.data.name, plain(self.cfg.data), self.cfg.seed)
        log.info(
            "Data %s: %d train, %d val, %d test, shape %s, %d classes",
            data.name, len(data.x_train), len(data.x_val), len(data.x_test), data.shape,
            data.num_classes,
        )  # fmt: skip
        return data

    @cached_property
    def parts(self) -> Parts:
        """The classifier, autoencoders and flow, trained or loaded through the store."""
        return Parts(self.cfg, self.data, self.store, self.device, self.progress)

    @property
    def methods(self) -> dict[str, DictConfig]:
        """The methods of this run: ``methods`` (an experiment's several) or ``method``."""
        methods = self.cfg.get("methods")
        return dict(methods) if methods else {self.cfg.method.name: self.cfg.method}

    def check_files(self) -> None:
        """Fails now, not after hours of training, when a metric or a method's perceptual term
        needs a weights file that is missing (LPIPS's backbone, FID's Inception)."""
        metrics = self.cfg.metrics
        if "lpips" in metrics.names:
            find_backbone(metrics.get("lpips_backbone"), metrics.get("lpips_net", "alex"))
        if "fid" in metrics.names:
            find_inception(metrics.get("fid_weights"))
        for method in self.methods.values():
            term = (method.get("losses") or {}).get("perceptual")
            if term and term.get("weight", 0) > 0 and term.get("backbone") != "random":
                find_backbone(term.get("backbone"), term.get("net", "alex"))

    @per_session
    def factuals(self, target: str | int) -> tuple[Tensor, Tensor, Tensor]:
        """The factuals ``x`` of ``factuals.split``, their predicted classes ``y`` and targets
        ``y_target`` (:func:`~flowcf.factuals.select_factuals`)."""
        cfg, parts = self.cfg.factuals, self.parts
        x, _ = parts.split(cfg.split)
        y = batched(parts.classifier, x).argmax(dim=1)
        return select_factuals(
            x, y, self.data.class_index(target), self.data.num_classes, explained=cfg["class"],
            limit=cfg.limit, pairs=self.cfg.data.get("pairs"), split=cfg.split,
        )  # fmt: skip

    @per_session
    def setting(self, latent: str | None) -> Setting:
        """What methods search with and metrics score with; ``latent`` names the autoencoder a
        method searches in (``autoencoder``, ``vae``) or is ``None`` for the input space."""
        parts = self.parts
        x, y = parts.split("train")
        x_real, y_real = parts.split("test")
        search = None if latent is None else getattr(parts, latent)
        # The flow scores the searched variable only where it models that space.
        same_space = input_space(search) is input_space(parts.flow_encoder)

        def keep(name: str, settings: dict, create) -> dict:
            spec = {**parts.spec("data", "classifier"), "settings": settings}
            return self.store.fetch("method_model", name, spec, create)

        constraints = self.data.constraints and self.data.constraints.to(self.device)
        return Setting(
            parts.classifier, parts.flow if same_space else None, x, y, self.data.num_classes,
            encoder=parts.flow_encoder, latent=search, z_train=parts.z_train,
            constraints=constraints, bounds=self.data.bounds, cache=keep, x_real=x_real,
            y_real=y_real,
        )  # fmt: skip

    def explainer(self, name: str) -> CounterfactualMethod:
        """Method ``name`` (a key of :attr:`methods`), built on this run's setting after
        seeding, so that explaining the same factuals twice gives the same result."""
        method = self.methods[name]
        setting = self.setting(method.get("latent"))
        seed_everything(self.cfg.seed)
        return METHODS.build(method.name, setting, progress=self.progress,
                             **options(method, *PIPELINE))  # fmt: skip

    @per_session
    def counterfactuals(self, name: str) -> Counterfactuals:
        """The counterfactuals of method ``name`` (a key of :attr:`methods`)."""
        method = self.methods[name]
        spec = {**self.parts.spec("data", "classifier", "autoencoder", "model", "factuals"),
                "method": plain(method)}  # fmt: skip
        if method.get("latent") == "vae":
            spec["vae"] = plain(self.cfg.vae)

        def create():
            explainer = self.explainer(name)  # first: a misconfigured method fails early
            cfs = explainer.explain(*self.factuals(method.target))
            return cfs.to_dict(), {"seconds": cfs.seconds, "factuals": len(cfs.x)}

        payload = self.store.fetch("counterfactuals", method.name, spec, create,
                                   "counterfactuals.pt")  # fmt: skip
        cfs = Counterfactuals.from_dict(payload)
        return Counterfactuals(
            **{k: v.to(self.device) if torch.is_tensor(v) else v for k, v in vars(cfs).items()}
        ).within(self.data.constraints)

    def evaluation(self, name: str) -> Setting:
        """The setting the metrics of method ``name`` score its counterfactuals in."""
        return replace(self.setting(None), flow=self.parts.flow, cfs=self.counterfactuals(name),
                       options=options(self.cfg.metrics, "names"))  # fmt: skip
