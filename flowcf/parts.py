"""The trained :class:`Parts` of a run: the classifier, the autoencoders and the flow, each
loaded from the artifact store when ``train`` already made it for the same settings, else
trained and saved.

The flow models the deterministic autoencoder's latent codes ``E(x)`` with the class as context
(PLACE's p_F); with the identity autoencoder of toy and tabular data, the inputs themselves; with
``space=pixel``, the pixels of images (a multiscale image flow trained on dequantised images).
"""

import logging
from functools import cached_property
from typing import Any

import torch
from omegaconf import DictConfig
from torch import Tensor, nn
from torch.nn.functional import cross_entropy, one_hot

from flowcf.batching import batched
from flowcf.checks import PARTS, UNKEYED
from flowcf.config import options, plain
from flowcf.data import Dataset
from flowcf.density import class_log_prob
from flowcf.environment import seed_everything
from flowcf.errors import UserError
from flowcf.flows import FLOWS, IMAGE_FLOWS
from flowcf.flows.images import bits_per_dim, dequantize
from flowcf.flows.multilabel import AttributeFlow
from flowcf.networks import AUTOENCODERS, CLASSIFIERS
from flowcf.store import Store
from flowcf.training import OBJECTIVES, fit

__all__ = ["Parts"]

log = logging.getLogger(__name__)


class Parts:
    """A run's data on the device and the models trained on it, each built on first use.

    Arguments:
        cfg: The composed config.
        data: The run's data set.
        store: The artifact store.
        device: Where the splits and models live.
        progress: Show progress bars while training.
    """

    def __init__(
        self, cfg: DictConfig, data: Dataset, store: Store, device: torch.device, progress: bool
    ):
        self.cfg, self.data, self.store, self.device, self.progress = (
            cfg, data, store, device, progress
        )  # fmt: skip
        #: Test figures of the trained models (accuracy, reconstruction error, NLL), by name.
        self.summary: dict[str, float] = {}
        self._splits: dict[str, tuple[Tensor, Tensor]] = {}

    def split(self, name: str) -> tuple[Tensor, Tensor]:
        """The inputs and labels of a split (``train``, ``val``, ``test``) on the device, moved
        there once (streamed images are read there by batch)."""
        if name not in self._splits:
            data = self.data
            self._splits[name] = tuple(getattr(data, f"{v}_{name}").to(self.device) for v in "xy")
        return self._splits[name]

    def spec(self, *groups: str) -> dict[str, Any]:
        """The settings that define an artifact: the named config groups and the seed, with the
        data's files by their contents (:attr:`data_files`) in place of the keys that located
        them: moving the data retrains nothing, changing a file retrains what depends on it."""
        values = {group: plain(self.cfg[group]) for group in (*groups, "seed")}
        located = set(self.data.files) if "data" in values else set()
        spec = {
            group: {k: v for k, v in value.items() if k not in {*UNKEYED, *located}}
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

    def _trained(self, group: str, build, loss, encode=None, labels=None) -> nn.Module:
        """The model of config ``group``: loaded from the store, or trained with ``loss`` on the
        train split (validated on val), inputs mapped by ``encode``, labels replaced by
        ``labels(split)`` if given, and saved. A model without parameters (the identity
        autoencoder) is neither trained nor stored."""
        cfg = self.cfg[group]
        if next(build().parameters(), None) is None:
            return build().to(self.device).eval()
        part = PARTS[group]
        spec = self.spec("data", *part.depends, group)
        amp = bool(self.cfg.get("amp")) and part.amp
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
            checkpoint = self.store.checkpoint(part.kind, cfg.name, spec)
            if not self.cfg.resume:
                checkpoint.unlink(missing_ok=True)
            metrics = fit(model, loss, train, val, **plain(cfg.train), amp=amp,
                          checkpoint=checkpoint, checkpoint_every=self.cfg.checkpoint_every,
                          progress=self.progress,
                          desc=f"train {part.kind} {cfg.name}")  # fmt: skip
            return {"state_dict": model.state_dict()}, metrics

        payload = self.store.fetch(part.kind, cfg.name, spec, create)
        model = build()
        try:
            model.load_state_dict(payload["state_dict"])
        except (KeyError, RuntimeError) as error:
            path = self.store.path(part.kind, cfg.name, spec)
            raise UserError(
                f"{path} does not fit {part.kind} '{cfg.name}' as configured now "
                f"({type(error).__name__}); delete it to retrain"
            ) from None
        return model.to(self.device).eval().requires_grad_(False)

    @cached_property
    def classifier(self) -> nn.Module:
        cfg, data = self.cfg.classifier, self.data
        model = self._trained(
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
        model = self._trained(
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
        """The class-conditional flow (config group ``model``); an image flow on dequantised
        pixels with ``space=pixel``, whose test NLL is also given in bits/dim."""
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
            model = self._trained("model", lambda: build(classes), loss, encode=self.encode)
        else:
            model = self._trained("model", lambda: AttributeFlow(build(len(attributes.names)),
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
