"""Metrics, by registry name (PPCEF's and PLACE's evaluations)."""

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
from flowcf.metrics.base import METRICS, EvaluationContext, Metric, compute_metrics

__all__ = ["METRICS", "EvaluationContext", "Metric", "compute_metrics"]
