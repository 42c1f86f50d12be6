"""Classifiers to explain and, for images, the autoencoders whose latent space is searched."""

from flowcf.models.autoencoders import AUTOENCODERS
from flowcf.models.classifiers import CLASSIFIERS

__all__ = ["AUTOENCODERS", "CLASSIFIERS"]
