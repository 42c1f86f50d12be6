"""Artifact store: trained models and counterfactuals keyed by the config that defines them.

An artifact lives in ``<root>/<kind>/<name>-<hash>/`` with ``config.yaml`` (the exact
settings that were hashed), the payload file and ``train_metrics.json``; while it is being
trained, also ``checkpoint.pt``, which an interrupted training resumes from. The same
settings always give the same directory, so ``explain`` finds what ``train`` made; any changed
setting gives a new key, never a silent reuse. Data files count by their contents
(:mod:`flowcf.fingerprint`, cached in ``<root>/fingerprints.json``), not by their paths.

Writes are atomic. While one process builds an artifact it holds ``.lock`` in the artifact's
directory, and others wait, then load; the lock goes when the build ends, and so does the
directory of a build that failed before it wrote anything (a checkpoint stays for resuming).
"""

import hashlib
import json
import logging
from collections.abc import Callable, Mapping
from contextlib import suppress
from functools import cached_property
from pathlib import Path
from typing import Any

import torch
import yaml

from flowcf.errors import UserError
from flowcf.fingerprint import Fingerprints
from flowcf.io import atomic_write, atomic_write_text
from flowcf.locks import exclusive

__all__ = ["Store"]

log = logging.getLogger(__name__)

CHECKPOINT = "checkpoint.pt"
LOCK = ".lock"


def config_hash(spec: Mapping[str, Any]) -> str:
    """A short, stable hash of a JSON-serialisable config."""
    text = json.dumps(spec, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


class Store:
    """A directory of artifacts, each built once and then loaded.

    Arguments:
        root: The store's directory (``paths.store``).
    """

    def __init__(self, root: str | Path):
        self.root = Path(root)

    @cached_property
    def fingerprints(self) -> Fingerprints:
        """The digests of data files, cached in the store."""
        return Fingerprints(self.root / "fingerprints.json")

    def path(self, kind: str, name: str, spec: Mapping[str, Any]) -> Path:
        """The directory of the artifact of ``kind`` and ``name`` defined by ``spec``."""
        return self.root / kind / f"{name}-{config_hash(spec)}"

    def checkpoint(self, kind: str, name: str, spec: Mapping[str, Any]) -> Path:
        """Where the training of an artifact keeps its checkpoint until the artifact is saved."""
        return self.path(kind, name, spec) / CHECKPOINT

    def fetch(
        self,
        kind: str,
        name: str,
        spec: Mapping[str, Any],
        create: Callable[[], tuple[dict[str, Any], dict[str, Any]]],
        filename: str = "model.pt",
    ) -> dict[str, Any]:
        """Loads the artifact defined by ``spec``, or creates and saves it first.

        Arguments:
            kind: The kind of artifact (``classifier``, ``flow``, ``counterfactuals``...).
            name: Its registry name, for readable directory names.
            spec: Exactly the settings that define the artifact.
            create: Builds the artifact when missing; returns ``(payload, metrics)``, where
                ``payload`` is a dict of tensors and plain values saved with ``torch.save``.
            filename: The payload's file name.

        Returns:
            The payload.
        """
        directory = self.path(kind, name, spec)
        file = directory / filename
        if file.exists():  # complete: written atomically
            return self._loaded(kind, name, file)
        # One writer per artifact: parallel sweep jobs wait for the first to build it, then load.
        try:
            with exclusive(directory / LOCK):
                if file.exists():
                    return self._loaded(kind, name, file)
                log.info(
                    "No %s '%s' for these settings yet; creating it in %s", kind, name, directory
                )
                payload, metrics = create()
                spec_text = yaml.safe_dump(dict(spec), sort_keys=True)
                atomic_write_text(directory / "config.yaml", spec_text)
                atomic_write_text(directory / "train_metrics.json", json.dumps(metrics, indent=2))
                atomic_write(file, lambda tmp: torch.save(payload, tmp))
                (directory / CHECKPOINT).unlink(missing_ok=True)
                return payload
        except BaseException:
            with suppress(OSError):  # empty: nothing to resume from, so no trace of the attempt
                directory.rmdir()
            raise

    def _loaded(self, kind: str, name: str, file: Path) -> dict[str, Any]:
        log.info("Loaded %s '%s' from %s", kind, name, file.parent)
        return self._load(file)

    @staticmethod
    def _load(file: Path) -> dict[str, Any]:
        try:
            return torch.load(file, map_location="cpu", weights_only=True)
        except Exception as error:
            raise UserError(
                f"cannot read {file} ({type(error).__name__}: {error}); delete that directory "
                "to rebuild the artifact"
            ) from error
