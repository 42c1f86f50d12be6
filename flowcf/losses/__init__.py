"""Loss terms, by registry name (:mod:`flowcf.losses.base`)."""

from flowcf.losses import decision, distance, perceptual, plausibility  # noqa: F401
from flowcf.losses.base import LOSSES, Candidate, LossTerm, Terms, build_terms, check_terms
from flowcf.losses.distance import median_absolute_deviation

__all__ = [
    "LOSSES",
    "Candidate",
    "LossTerm",
    "Terms",
    "build_terms",
    "check_terms",
    "median_absolute_deviation",
]
