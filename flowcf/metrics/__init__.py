"""Metrics, by registry name (DESIGN §6)."""

from flowcf.metrics import (  # noqa: F401  (registers them)
    actionability,
    density,
    diversity,
    fid,
    outliers,
    perceptual,
    proximity,
    runtime,
    validity,
)
from flowcf.metrics.base import METRICS, Metric, compute_metrics

__all__ = ["METRICS", "Metric", "compute_metrics"]
