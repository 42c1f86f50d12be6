"""Classifiers to explain (and, for images, autoencoders)."""

from flowcf.models.classifiers import CLASSIFIERS

__all__ = ["CLASSIFIERS"]
