"""Data sets: the registry, the split and scaled :class:`Dataset`, and the loaders.

Importing this package registers every loader in :data:`DATASETS`.
"""

from flowcf.data import bundled, celeba, mnist, ppcef, tabular, toys  # noqa: F401  (registers them)
from flowcf.data.base import DATASETS, Dataset

__all__ = ["DATASETS", "Dataset"]
