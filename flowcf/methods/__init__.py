"""Counterfactual methods, by registry name."""

from flowcf.methods import clarity, place, ppcef, revise, wachter  # noqa: F401  (registers them)
from flowcf.methods.base import METHODS, CounterfactualMethod, Counterfactuals, targets_for

__all__ = ["METHODS", "CounterfactualMethod", "Counterfactuals", "targets_for"]
