"""Metrics, by registry name (PPCEF's and PLACE's evaluations)."""

from flowcf.metrics.base import METRICS, Metric, compute_metrics
from flowcf.registry import import_modules

import_modules(__name__)

__all__ = ["METRICS", "Metric", "compute_metrics"]
