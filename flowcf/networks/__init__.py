"""Classifiers to explain and, for images, the autoencoders whose latent space is searched."""

from flowcf.networks.autoencoders import AUTOENCODERS
from flowcf.networks.classifiers import CLASSIFIERS

__all__ = ["AUTOENCODERS", "CLASSIFIERS"]
