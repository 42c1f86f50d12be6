"""Artifact store: trained models and counterfactuals keyed by the config that defines them.

An artifact lives in ``<root>/<kind>/<name>-<hash>/`` with ``config.yaml`` (the exact
settings that were hashed), the payload file and ``train_metrics.json``; while it is being
trained, also ``checkpoint.pt``, which an interrupted training resumes from. The same
settings always give the same directory, so ``explain`` finds what ``train`` made; any changed
setting gives a new key, never a silent reuse. Writes are atomic, and a file lock beside each
artifact lets only one process build it while the others wait and load.
"""

import hashlib
import json
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
import yaml
from filelock import FileLock

from flowcf.errors import UserError
from flowcf.io import atomic_write, atomic_write_text

__all__ = ["Store"]

log = logging.getLogger(__name__)

CHECKPOINT = "checkpoint.pt"


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
        directory.parent.mkdir(parents=True, exist_ok=True)
        # One writer per artifact: parallel sweep jobs wait for the first to build it, then load.
        with FileLock(directory.with_name(directory.name + ".lock")):
            if file.exists():
                log.info("Loaded %s '%s' from %s", kind, name, directory)
                return self._load(file)
            log.info("No %s '%s' for these settings yet; creating it in %s", kind, name, directory)
            payload, metrics = create()
            spec_text = yaml.safe_dump(dict(spec), sort_keys=True)
            atomic_write_text(directory / "config.yaml", spec_text)
            atomic_write_text(directory / "train_metrics.json", json.dumps(metrics, indent=2))
            atomic_write(file, lambda tmp: torch.save(payload, tmp))
            (directory / CHECKPOINT).unlink(missing_ok=True)
            return payload

    @staticmethod
    def _load(file: Path) -> dict[str, Any]:
        try:
            return torch.load(file, map_location="cpu", weights_only=True)
        except Exception as error:
            raise UserError(
                f"cannot read {file} ({type(error).__name__}: {error}); delete that directory "
                "to rebuild the artifact"
            ) from error
