"""Counterfactual methods, by registry name."""

from flowcf.methods import ppcef, wachter  # noqa: F401  (registers the methods)
from flowcf.methods.base import METHODS, CounterfactualMethod, Counterfactuals, targets_for

__all__ = ["METHODS", "CounterfactualMethod", "Counterfactuals", "targets_for"]
