"""A :class:`Session` holds one run's parts and builds each on first use.

Data first; then the classifier, the autoencoders and the flow through the artifact store
(loaded when ``train`` already made them for the same settings, else trained and saved); then
each method's counterfactuals, also stored, so ``evaluate`` finds what ``explain`` made.

The flow models the deterministic autoencoder's latent codes ``E(x)`` with the class as context
(PLACE's p_F); with the identity autoencoder of toy and tabular data, the inputs themselves; with
``space=pixel``, the pixels of images (a multiscale image flow trained on dequantised images).
"""

import logging
import sys
from functools import cached_property, wraps
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf, open_dict
from torch import Tensor, nn
from torch.nn.functional import cross_entropy, one_hot

from flowcf.data import DATASETS, Dataset
from flowcf.density import class_log_prob
from flowcf.environment import resolve_device, seed_everything, set_threads
from flowcf.errors import UserError
from flowcf.flows import FLOWS, IMAGE_FLOWS
from flowcf.flows.images import bits_per_dim, dequantize
from flowcf.flows.multilabel import AttributeFlow
from flowcf.losses import Models
from flowcf.methods import METHODS, CounterfactualMethod, Counterfactuals, targets_for
from flowcf.metrics import EvaluationContext
from flowcf.metrics.fid import find_inception
from flowcf.models import AUTOENCODERS, CLASSIFIERS
from flowcf.models.autoencoders import input_space
from flowcf.models.lpips import find_backbone
from flowcf.store import Store
from flowcf.training import OBJECTIVES, fit

__all__ = ["Session", "plain"]

log = logging.getLogger(__name__)

#: Trained parts: config group → (store kind, groups it depends on besides data and seed).
PARTS = {
    "classifier": ("classifier", ()),
    "autoencoder": ("autoencoder", ()),
    "vae": ("vae", ()),
    "model": ("flow", ("autoencoder",)),
}
#: Method config keys that the pipeline reads rather than the method's constructor.
PIPELINE_KEYS = ("target", "latent")
#: Config keys that say where things are or how many factuals to explain, not what a model
#: learns; left out of store keys (counterfactuals are keyed by the resolved ``factuals``), as
#: are the data keys that located the files a data set read (``Dataset.files``).
UNKEYED_KEYS = ("root", "download", "num_factuals", "workers", "cache")
BATCH = 512
#: The parts ``amp=true`` trains in mixed precision: the flow keeps float32 for its log-dets.
AMP_GROUPS = ("classifier", "autoencoder", "vae")


def plain(node: Any) -> Any:
    """A config node as plain Python containers, resolved."""
    return OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else node


def options(node: DictConfig, *drop: str) -> dict[str, Any]:
    """A config group as keyword arguments, without its ``name`` and the ``drop`` keys."""
    return {k: v for k, v in plain(node).items() if k not in {"name", *drop}}


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


def batched(function, x: Tensor) -> Tensor:
    """``function`` applied to ``x`` in chunks, without gradients."""
    with torch.no_grad():
        return torch.cat([function(chunk) for chunk in x.split(BATCH)])


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
        #: Test figures of the trained models (accuracy, reconstruction error, NLL), by name.
        self.summary: dict[str, float] = {}
        seed_everything(cfg.seed)

    def fold(self, index: int) -> "Session":
        """The session of cross-validation fold ``index`` (``data.fold``), in ``fold<index>/``."""
        cfg = self.cfg.copy()
        with open_dict(cfg):
            cfg.data.fold = index
        return Session(cfg, self.run_dir / f"fold{index}")

    def spec(self, *groups: str) -> dict[str, Any]:
        """The settings that define an artifact: the named config groups and the seed, with the
        data's files by their contents (:attr:`data_files`) in place of the keys that located
        them: moving the data retrains nothing, changing a file retrains what depends on it."""
        values = {group: plain(self.cfg[group]) for group in (*groups, "seed")}
        located = set(self.data.files) if "data" in values else set()
        spec = {
            group: {k: v for k, v in value.items() if k not in {*UNKEYED_KEYS, *located}}
            if isinstance(value, dict) else value
            for group, value in values.items()
        }  # fmt: skip
        if located:
            spec["data"]["files"] = self.data_files
        return spec

    @cached_property
    def data_files(self) -> dict[str, str]:
        """The SHA-256 of the files the data set read, by the config key that located them."""
        fingerprints = self.store.fingerprints
        return {key: fingerprints.of(paths) for key, paths in self.data.files.items()}

    @cached_property
    def data(self) -> Dataset:
        data = DATASETS.build(self.cfg.data.name, plain(self.cfg.data), self.cfg.seed)
        log.info(
            "Data %s: %d train, %d val, %d test, shape %s, %d classes",
            data.name, len(data.x_train), len(data.x_val), len(data.x_test), data.shape,
            data.num_classes,
        )  # fmt: skip
        return data

    @per_session  # moved to the device once; streamed images are read there by batch
    def split(self, name: str) -> tuple[Tensor, Tensor]:
        """The inputs and labels of a split (``train``, ``val``, ``test``) on the device."""
        data = self.data
        return getattr(data, f"x_{name}").to(self.device), getattr(data, f"y_{name}").to(
            self.device
        )

    def _model(self, group: str, build, loss, encode=None, labels=None) -> nn.Module:
        """The model of config ``group``: loaded from the store, or trained with ``loss`` on the
        train split (validated on val), inputs mapped by ``encode``, labels replaced by
        ``labels(split)`` if given, and saved. A model without parameters (the identity
        autoencoder) is neither trained nor stored."""
        cfg = self.cfg[group]
        if next(build().parameters(), None) is None:
            return build().to(self.device).eval()
        kind, depends = PARTS[group]
        spec = self.spec("data", *depends, group)
        amp = bool(self.cfg.get("amp")) and group in AMP_GROUPS
        if amp:  # mixed precision trains another model; off, the keys stay as they were
            spec["amp"] = True

        def create():
            seed_everything(self.cfg.seed)
            model = build().to(self.device)
            train, val = self.split("train"), self.split("val")
            if encode is not None:
                train, val = (encode(train[0]), train[1]), (encode(val[0]), val[1])
            if labels is not None:
                train, val = (
                    (v[0], labels(n).to(self.device)) for v, n in ((train, "train"), (val, "val"))
                )
            checkpoint = self.store.checkpoint(kind, cfg.name, spec)
            if not self.cfg.resume:
                checkpoint.unlink(missing_ok=True)
            metrics = fit(model, loss, train, val, **plain(cfg.train), amp=amp,
                          checkpoint=checkpoint, checkpoint_every=self.cfg.checkpoint_every,
                          progress=self.progress, desc=f"train {kind} {cfg.name}")  # fmt: skip
            return {"state_dict": model.state_dict()}, metrics

        payload = self.store.fetch(kind, cfg.name, spec, create)
        model = build()
        try:
            model.load_state_dict(payload["state_dict"])
        except (KeyError, RuntimeError) as error:
            path = self.store.path(kind, cfg.name, spec)
            raise UserError(
                f"{path} does not fit {kind} '{cfg.name}' as configured now "
                f"({type(error).__name__}); delete it to retrain"
            ) from None
        return model.to(self.device).eval().requires_grad_(False)

    @cached_property
    def classifier(self) -> nn.Module:
        cfg, data = self.cfg.classifier, self.data
        model = self._model(
            "classifier",
            lambda: CLASSIFIERS.build(
                cfg.name, data.shape, data.num_classes, **options(cfg, "train")
            ),
            lambda m, x, y: cross_entropy(m(x), y),
        )
        x, y = self.split("test")
        accuracy = (batched(model, x).argmax(dim=1) == y).float().mean().item()
        self.summary["classifier_test_accuracy"] = accuracy
        log.info("Classifier %s: test accuracy %.4f", cfg.name, accuracy)
        return model

    def _autoencoder(self, group: str) -> nn.Module:
        if group not in self.cfg:
            raise UserError(f"this run has no '{group}' config; pick one with {group}=<name>")
        cfg = self.cfg[group]
        model = self._model(
            group,
            lambda: AUTOENCODERS.build(cfg.name, self.data.shape, **options(cfg, "train")),
            lambda m, x, y: m.loss(x),
        )
        if next(model.parameters(), None) is not None:
            x, _ = self.split("test")
            error = batched(lambda v: (model.decode(model.encode(v)) - v).square().flatten(1)
                            .mean(1), x).mean()  # fmt: skip
            self.summary[f"{group}_test_mse"] = error.item()
            log.info("Autoencoder %s: test reconstruction MSE %.5f", cfg.name, error.item())
        return model

    @cached_property
    def autoencoder(self) -> nn.Module:
        """The deterministic autoencoder whose codes the flow models (identity on vectors)."""
        return self._autoencoder("autoencoder")

    @cached_property
    def vae(self) -> nn.Module:
        """The VAE that REVISE and CLARITY search in."""
        return self._autoencoder("vae")

    @property
    def pixel_space(self) -> bool:
        """Whether the flow models the pixels themselves (``space=pixel``)."""
        return self.cfg.space == "pixel"

    @cached_property
    def flow_encoder(self) -> nn.Module | None:
        """What maps inputs to the flow's space: the deterministic autoencoder, or ``None`` with
        ``space=pixel``, where the flow models the inputs."""
        return None if self.pixel_space else self.autoencoder

    def encode(self, x: Tensor) -> Tensor:
        """Inputs to the flow's space."""
        return x if self.flow_encoder is None else batched(self.flow_encoder.encode, x)

    @cached_property
    def flow(self) -> nn.Module:
        """The class-conditional flow; an image flow on dequantised pixels with ``space=pixel``,
        whose test NLL is also given in bits/dim."""
        cfg, classes = self.cfg.model, self.data.num_classes
        shape = tuple(self.encode(self.split("val")[0][:1]).shape[1:])
        registry, size, noise = (
            (IMAGE_FLOWS, shape, dequantize)
            if self.pixel_space
            else (FLOWS, shape[0], lambda z: z)
        )
        objective = OBJECTIVES.get(cfg.get("objective", "mle"))
        jitter = cfg.get("noise", 0.0)  # Gaussian noise std on training batches (PPCEF: 0.02)

        def build(context_dim: int) -> nn.Module:
            return registry.build(cfg.name, size, context_dim,
                                  **options(cfg, "train", "objective", "noise"))  # fmt: skip

        def loss(m: nn.Module, z: Tensor, y: Tensor) -> Tensor:
            z = noise(z)
            if m.training and jitter:  # training batches only: validation scores clean points
                z = z + jitter * torch.randn_like(z)
            return objective(m, z, one_hot(y, classes).to(z.dtype))

        # Multi-label data (CelebA) in the latent space: p_F(z | a) on every attribute, scored
        # given the class of the first; a pixel-space image flow takes the class alone.
        attributes = None if self.pixel_space else self.data.attributes
        if attributes is None:
            model = self._model("model", lambda: build(classes), loss, encode=self.encode)
        else:
            model = self._model("model", lambda: AttributeFlow(build(len(attributes.names)),
                                                               attributes.prior(classes)),
                                lambda m, z, a: objective(m.flow, z, a), encode=self.encode,
                                labels=lambda split: getattr(attributes, split))  # fmt: skip
        x, y = self.split("test")
        nll = -batched(lambda i: class_log_prob(model, self.encode(noise(x[i])), y[i], classes),
                       torch.arange(len(x), device=self.device)).mean()  # fmt: skip
        self.summary["flow_test_nll"] = nll.item()
        message = f"Flow {cfg.name} on {'x'.join(map(str, shape))}: test NLL {nll.item():.4f} nats"
        if self.pixel_space:
            self.summary["flow_test_bits_per_dim"] = bits_per_dim(nll, model.dim).item()
            message += f", {self.summary['flow_test_bits_per_dim']:.4f} bits/dim"
        log.info(message)
        return model

    @cached_property
    def z_train(self) -> Tensor:
        """The training data in the flow's space."""
        return self.encode(self.split("train")[0])

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
        """The factuals ``x``, their predicted classes ``y`` and targets ``y_target``.

        ``data.pairs`` (e.g. MNIST's 0→8, 1→5) gives (class, target) pairs with
        ``factuals.limit`` factuals each; otherwise the points the classifier assigns to
        ``factuals.class`` (``null``: all) go to ``target``, at most ``factuals.limit``.
        """
        cfg, classes = self.cfg.factuals, self.data.num_classes
        x, _ = self.split(cfg.split)
        y = batched(self.classifier, x).argmax(dim=1)
        pairs = self.cfg.data.get("pairs")
        if pairs:
            if max(max(pair) for pair in pairs) >= classes:
                raise UserError(f"data.pairs must be [class, other class] in 0..{classes - 1}")
            chosen = [(torch.nonzero(y == a).squeeze(1)[: cfg.limit], b) for a, b in pairs]
            index = torch.cat([i for i, _ in chosen])
            y_target = torch.cat([torch.full_like(i, b) for i, b in chosen])
        else:
            keep = y == cfg["class"] if cfg["class"] is not None else torch.ones_like(y) > 0
            y_target = targets_for(y, self.data.class_index(target), classes)
            index = torch.nonzero(keep & (y_target != y)).squeeze(1)[: cfg.limit]
            y_target = y_target[index]
        if len(index) == 0:
            raise UserError(
                f"no factuals: the classifier assigns no {cfg.split} point to the chosen "
                "classes; change factuals.class or data.pairs"
            )
        return x[index], y[index], y_target

    @per_session
    def models(self, latent: str | None) -> Models:
        """What a method computes with; ``latent`` names the autoencoder it searches in
        (``autoencoder``, ``vae``) or is ``None`` for the input space."""
        x, y = self.split("train")
        search = None if latent is None else getattr(self, latent)

        def keep(name: str, settings: dict, create) -> dict:
            spec = {**self.spec("data", "classifier"), "settings": settings}
            return self.store.fetch("method_model", name, spec, create)

        constraints = self.data.constraints and self.data.constraints.to(self.device)
        # The flow scores the searched variable only where it models that space.
        same_space = input_space(search) is input_space(self.flow_encoder)
        flow = self.flow if same_space else None
        return Models(self.classifier, flow, x, y, self.data.num_classes, search,
                      self.z_train, constraints, self.data.bounds, keep)  # fmt: skip

    def explainer(self, name: str) -> CounterfactualMethod:
        """Method ``name`` (a key of :attr:`methods`), built on this run's models after
        seeding, so that explaining the same factuals twice gives the same result."""
        method = self.methods[name]
        models = self.models(method.get("latent"))
        seed_everything(self.cfg.seed)
        return METHODS.build(method.name, models, progress=self.progress,
                             **options(method, *PIPELINE_KEYS))  # fmt: skip

    @per_session
    def counterfactuals(self, name: str) -> Counterfactuals:
        """The counterfactuals of method ``name`` (a key of :attr:`methods`)."""
        method = self.methods[name]
        spec = {**self.spec("data", "classifier", "autoencoder", "model", "factuals"),
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

    def evaluation(self, name: str) -> EvaluationContext:
        """What the metrics of method ``name`` are computed from."""
        x_train, y_train = self.split("train")
        x_test, y_test = self.split("test")
        return EvaluationContext(
            self.counterfactuals(name), self.classifier, self.flow, x_train, y_train,
            self.data.num_classes, options(self.cfg.metrics, "names"),
            autoencoder=self.flow_encoder, z_train=self.z_train, x_real=x_test, y_real=y_test,
            constraints=self.models(None).constraints,
        )  # fmt: skip
