"""Normalizing flows, built by name from :data:`FLOWS` (vectors) or :data:`IMAGE_FLOWS` (images,
``space=pixel``), with a base chosen by name from :data:`BASES`.

Examples:
    >>> from flowcf.flows import FLOWS
    >>> "realnvp" in FLOWS
    True
    >>> flow = FLOWS.build("realnvp", 2, context_dim=3, layers=4, hidden=32)
    >>> flow = FLOWS.build("nice", 4, context_dim=3, base="plugen", sigma=0.5)
"""

from flowcf.registry import Registry, import_modules

__all__ = [
    "BASES",
    "FLOWS",
    "IMAGE_FLOWS",
    "Flow",
    "PluGeNNormal",
    "StandardNormal",
    "Transform",
    "build_base",
]

#: Flow factories ``(dim, context_dim=0, *, layers, hidden, depth, base, sigma, ...) -> Flow``
#: by name.
FLOWS = Registry("flow")
#: Multiscale image flow factories ``(shape, context_dim=0, *, levels, layers, ...) -> Flow`` by
#: name; they take images (B, C, H, W) with pixels in [0, 1].
IMAGE_FLOWS = Registry("image flow")

# The flow modules register into FLOWS on import, so they come after its definition.
import_modules(__name__)
from flowcf.flows.base import Flow, Transform  # noqa: E402
from flowcf.flows.distributions import BASES, PluGeNNormal, StandardNormal, build_base  # noqa: E402
