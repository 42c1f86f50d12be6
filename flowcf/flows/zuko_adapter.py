"""zuko's flows behind flowcf's :class:`~flowcf.flows.Flow` interface: ``model=zuko_<name>``.

The adapter keeps a zuko flow's lazy transform (a module that maps a context to a transform) and
pairs it with a flowcf base, so zuko's flows take the same context and ``base: normal|plugen``
options as flowcf's own, and add families flowcf does not implement (NSF's rational-quadratic
splines). Each entry of :data:`ZUKO_FLOWS` is registered in :data:`~flowcf.flows.FLOWS` as
``zuko_<name>``; adding one there (and a ``conf/model/zuko_<name>.yaml``) exposes another.

References:
    | zuko: normalizing flows in PyTorch (Rozet et al., 2022)
    | https://github.com/probabilists/zuko
"""

from functools import partial
from typing import Any

import zuko
from torch import Tensor

from flowcf.flows import FLOWS
from flowcf.flows.base import Flow, Transform, build_flow
from flowcf.registry import forwards
from flowcf.rules import Count, Natural

__all__ = ["ZUKO_FLOWS", "ZukoTransform", "zuko_flow"]

#: The zuko flow classes exposed as ``zuko_<name>``: autoregressive flows whose
#: ``(features, context, transforms=, randperm=, hidden_features=)`` options map onto flowcf's.
#: NAF, UNAF and SOSPF are not: they invert by bisection on [-10, 10], which their layers'
#: outputs can leave, and NAF's density fails the flow tests (``tests/test_flows.py``) once its
#: parameters move away from the identity.
ZUKO_FLOWS = {
    "maf": zuko.flows.MAF,  # affine (Papamakarios et al., 2017)
    "nsf": zuko.flows.NSF,  # rational-quadratic splines (Durkan et al., 2019)
}


class ZukoTransform(Transform):
    """A zuko lazy transform (a module mapping a context to a transform) as a
    :class:`~flowcf.flows.Transform`.

    Arguments:
        transform: The lazy transform, e.g. ``zuko.flows.NSF(2).transform``.
        context_dim: The number of context features it takes, 0 to ignore the context.
    """

    def __init__(self, transform: zuko.flows.LazyTransform, context_dim: int = 0):
        super().__init__()
        self.transform = transform
        self.context_dim = context_dim

    def _at(self, x: Tensor, context: Tensor | None):
        return self.transform(context.to(x) if self.context_dim else None)

    def forward(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        return self._at(x, context).call_and_ladj(x)

    def inverse(self, z: Tensor, context: Tensor | None = None) -> Tensor:
        return self._at(z, context).inv(z)


@forwards(build_flow)
def zuko_flow(
    flow_class: type[zuko.flows.Flow],
    dim: int,
    context_dim: int = 0,
    *,
    layers: Count = 3,
    hidden: Count = 64,
    depth: Natural = 2,
    random_order: bool = False,
    **options: Any,
) -> Flow:
    """A zuko flow's transforms with a flowcf base.

    Arguments:
        flow_class: The zuko flow class, e.g. :class:`zuko.flows.NSF`.
        dim: The number of features :math:`D`.
        context_dim: The number of context features, 0 for an unconditional flow.
        layers: The number of zuko transforms.
        hidden: The width of the conditioners' hidden layers.
        depth: The number of the conditioners' hidden layers.
        random_order: Random feature orders between layers (zuko's ``randperm``).
        options: The base's (:func:`~flowcf.flows.base.build_flow`).

    Examples:
        >>> import torch
        >>> flow = FLOWS.build("zuko_nsf", 3, context_dim=2, layers=2, hidden=16)
        >>> flow.log_prob(torch.randn(5, 3), torch.eye(2)[[0, 1, 1, 0, 1]]).shape
        torch.Size([5])
    """

    def transforms(transform_context: int) -> list[Transform]:
        zuko_model = flow_class(
            dim,
            transform_context,
            transforms=layers,
            randperm=random_order,
            hidden_features=[hidden] * depth,
        )
        return [ZukoTransform(zuko_model.transform, transform_context)]

    return build_flow(dim, context_dim, transforms, **options)


for _name, _flow_class in ZUKO_FLOWS.items():
    FLOWS.register(f"zuko_{_name}")(partial(zuko_flow, _flow_class))
