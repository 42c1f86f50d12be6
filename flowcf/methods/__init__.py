"""Counterfactual methods, by registry name."""

from flowcf.methods import clarity, dicoflex, place, ppcef, revise, wachter  # noqa: F401
from flowcf.methods.base import METHODS, CounterfactualMethod

__all__ = ["METHODS", "CounterfactualMethod"]
