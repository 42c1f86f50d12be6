"""Metrics, by registry name (DESIGN §6)."""

from flowcf.metrics import density, proximity, runtime, validity  # noqa: F401  (registers them)
from flowcf.metrics.base import METRICS, EvaluationContext, Metric, compute_metrics

__all__ = ["METRICS", "EvaluationContext", "Metric", "compute_metrics"]
