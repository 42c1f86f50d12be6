"""Data sets: the registry, the split and scaled :class:`Dataset`, and the loaders.

Importing this package registers every loader in :data:`DATASETS`.
"""

from flowcf.data.base import DATASETS, Dataset
from flowcf.registry import import_modules

import_modules(__name__)

__all__ = ["DATASETS", "Dataset"]
