"""Loss terms, by registry name (:mod:`flowcf.losses.base`)."""

from flowcf.losses.base import LOSSES, Candidate, LossTerm, Terms, build_terms, check_terms
from flowcf.losses.distance import median_absolute_deviation
from flowcf.registry import import_modules

import_modules(__name__)

__all__ = [
    "LOSSES",
    "Candidate",
    "LossTerm",
    "Terms",
    "build_terms",
    "check_terms",
    "median_absolute_deviation",
]
