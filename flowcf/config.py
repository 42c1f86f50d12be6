"""Config nodes as plain Python values."""

from typing import Any

from omegaconf import DictConfig, OmegaConf

__all__ = ["options", "plain"]


def plain(node: Any) -> Any:
    """A config node as plain Python containers, resolved."""
    return OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else node


def options(node: DictConfig, *drop: str) -> dict[str, Any]:
    """A config group as keyword arguments, without its ``name`` and the ``drop`` keys."""
    return {k: v for k, v in plain(node).items() if k not in {"name", *drop}}
