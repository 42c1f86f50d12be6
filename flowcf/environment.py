"""Seeding, device and thread settings: one ``seed`` controls every random number."""

import os
import random

import numpy as np
import torch

from flowcf.errors import UserError

__all__ = ["resolve_device", "seed_everything", "set_threads"]


def seed_everything(seed: int) -> None:
    """Seeds Python, NumPy and PyTorch (CPU and CUDA) with ``seed``."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA when present, else the CPU; ``cpu`` and ``cuda`` are taken as asked."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(
            f"device={name} asked for, but PyTorch sees no CUDA device; use device=cpu"
        )
    return torch.device(name)


def set_threads(threads: int | None) -> None:
    """Caps PyTorch's intra-op CPU threads (``None`` leaves PyTorch's default)."""
    if threads is not None:
        torch.set_num_threads(threads)
