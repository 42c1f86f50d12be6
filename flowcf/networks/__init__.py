"""Classifiers to explain and, for images, the autoencoders whose latent space is searched."""

from flowcf.networks.autoencoders import AUTOENCODERS
from flowcf.networks.classifiers import CLASSIFIERS
from flowcf.registry import import_modules

import_modules(__name__)

__all__ = ["AUTOENCODERS", "CLASSIFIERS"]
