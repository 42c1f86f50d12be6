"""Name → factory registries for datasets, flows, classifiers, methods, losses and metrics.

Every swappable part of flowcf is a name in a :class:`Registry` and a YAML file in ``conf/``.
A registry package imports its modules with :func:`import_modules`, so adding a part is adding
one module and one YAML file.

Examples:
    >>> SHAPES = Registry("shape")
    >>> @SHAPES.register("square")
    ... def square(side: float) -> float:
    ...     return side**2
    >>> SHAPES.build("square", side=3.0)
    9.0
"""

import importlib
import inspect
import pkgutil
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Generic, TypeVar

from flowcf.errors import UserError
from flowcf.rules import check_options, one_of, rule_of

__all__ = ["Registry", "forwards", "import_modules"]

T = TypeVar("T", bound=Callable[..., Any])


class Registry(Generic[T]):
    """A mapping from names to factories of one kind of part.

    Arguments:
        kind: What the registry holds, used in error messages (e.g. ``"flow"``).
    """

    def __init__(self, kind: str):
        self.kind = kind
        self._factories: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator that registers a factory under ``name``."""

        def decorator(factory: T) -> T:
            if name in self._factories:
                raise ValueError(f"{self.kind} '{name}' is registered twice")
            self._factories[name] = factory
            return factory

        return decorator

    def get(self, name: str) -> T:
        """The factory registered under ``name``; a :class:`UserError` lists the choices."""
        try:
            return self._factories[name]
        except KeyError:
            choices = ", ".join(sorted(self._factories))
            raise UserError(f"unknown {self.kind} '{name}'; choose one of: {choices}") from None

    def options(self, name: str, skip: int) -> dict[str, inspect.Parameter]:
        """The options of factory ``name``: its parameters (with those it forwards, see
        :func:`forwards`) after the ``skip`` arguments that its callers pass first (a flow's
        ``dim`` and ``context_dim``, a method's models)."""
        parameters = inspect.signature(self.get(name), eval_str=True).parameters
        variadic = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
        return {k: p for k, p in list(parameters.items())[skip:] if p.kind not in variadic}

    def check(
        self, name: str, key: str, options: Mapping[str, Any], skip: int, given: tuple = ()
    ) -> None:
        """Checks the config ``options`` of factory ``name`` (config node ``key``) before it is
        built, against its options but the ``given`` ones its callers pass
        (:func:`~flowcf.rules.check_options`)."""
        parameters = {k: p for k, p in self.options(name, skip).items() if k not in given}
        check_options(key, options, parameters, f"{self.kind} '{name}'")

    def check_node(
        self, key: str, node: Mapping[str, Any], skip: int, drop: tuple = (), given: tuple = ()
    ) -> None:
        """Checks config node ``key``: its ``name`` is registered here and the other keys but
        the ``drop`` ones (which others read) are options of that factory (:meth:`check`)."""
        options = {k: v for k, v in node.items() if k not in ("name", *drop)}
        one_of(*self).check(f"{key}.name", node.get("name"))
        self.check(node["name"], key, options, skip, given)

    def build(self, name: str, /, *args: Any, **kwargs: Any) -> Any:
        """Calls the factory registered under ``name``; arguments it does not take (a typo in
        a config key, say) and keyword arguments its annotations reject (``layers='abc'``,
        ``layers=0`` for a :data:`~flowcf.rules.Count`) are a :class:`UserError` naming them."""
        factory = self.get(name)
        signature = inspect.signature(factory, eval_str=True)
        try:
            signature.bind(*args, **kwargs)
        except TypeError as error:
            raise UserError(f"{self.kind} '{name}': {error}") from None
        for key, value in kwargs.items():
            parameter = signature.parameters.get(key)
            rule = parameter and rule_of(parameter.annotation)
            if rule is not None:
                rule.check(f"{self.kind} '{name}': {key}", value)
        return factory(*args, **kwargs)

    def __contains__(self, name: object) -> bool:
        return name in self._factories

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._factories))


def forwards(*targets: Callable[..., Any]) -> Callable[[T], T]:
    """Declares that a factory passes its ``**kwargs`` on to ``targets``, as zuko's flows pass
    theirs on to their transforms and networks.

    The factory's signature, which :meth:`Registry.options`, :meth:`Registry.check` and
    :meth:`Registry.build` read, becomes its own parameters followed by the keyword-only
    parameters of the targets that it does not name itself. An option shared by several
    factories is thus declared once, with its default and rule, where it is used.

    Examples:
        >>> def network(*, width: int = 8) -> int:
        ...     return width
        >>> @forwards(network)
        ... def model(layers: int = 2, **kwargs) -> int:
        ...     return layers * network(**kwargs)
        >>> inspect.signature(model)
        <Signature (layers: int = 2, *, width: int = 8) -> int>
    """

    def decorator(factory: T) -> T:
        signature = inspect.signature(factory, eval_str=True)
        own = [p for p in signature.parameters.values() if p.kind is not p.VAR_KEYWORD]
        parameters = {p.name: p for p in own}
        for target in targets:
            for p in inspect.signature(target, eval_str=True).parameters.values():
                if p.kind is p.KEYWORD_ONLY:
                    parameters.setdefault(p.name, p)
        factory.__signature__ = signature.replace(parameters=list(parameters.values()))
        return factory

    return decorator


def import_modules(package: str) -> None:
    """Imports every module of ``package``, so that the parts they define register themselves:
    a registry package keeps no list of its modules."""
    for module in pkgutil.iter_modules(importlib.import_module(package).__path__):
        importlib.import_module(f"{package}.{module.name}")
