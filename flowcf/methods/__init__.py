"""Counterfactual methods, by registry name."""

from flowcf.methods.base import METHODS, CounterfactualMethod
from flowcf.registry import import_modules

import_modules(__name__)

__all__ = ["METHODS", "CounterfactualMethod"]
