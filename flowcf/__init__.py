"""flowcf: counterfactual explanations with normalizing flows, as reproducible experiments."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("flowcf")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0+unknown"

__all__ = ["__version__"]
