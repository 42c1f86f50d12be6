"""Name → factory registries for datasets, flows, classifiers, methods, losses and metrics.

Every swappable part of flowcf is a name in a :class:`Registry` and a YAML file in ``conf/``.

Example:
    >>> SHAPES = Registry("shape")
    >>> @SHAPES.register("square")
    ... def square(side: float) -> float:
    ...     return side**2
    >>> SHAPES.build("square", side=3.0)
    9.0
"""

import inspect
import types
import typing
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from flowcf.errors import UserError

__all__ = ["Registry"]

T = TypeVar("T", bound=Callable[..., Any])

SCALARS = (bool, int, float, str, type(None))


def type_error(annotation: Any, value: Any) -> str | None:
    """Why ``value`` does not fit a scalar ``annotation`` (``int``, ``float | None``, ...), or
    ``None`` when it fits or the annotation is not a scalar one (not checked)."""
    union = typing.get_origin(annotation) in (types.UnionType, typing.Union)
    allowed = typing.get_args(annotation) if union else (annotation,)
    if not all(t in SCALARS for t in allowed):
        return None
    # bool is an int in Python, and an int is a fine float, but not the other way round
    kind = type(value) if not isinstance(value, int) or isinstance(value, bool) else int
    fits = kind in allowed or (kind is int and float in allowed)
    names = " or ".join("null" if t is type(None) else t.__name__ for t in allowed)
    return None if fits else f"must be {names}, got {value!r}"


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

    def build(self, name: str, /, *args: Any, **kwargs: Any) -> Any:
        """Calls the factory registered under ``name``; arguments it does not take (a typo in
        a config key, say) and keyword arguments of the wrong scalar type (``layers='abc'``)
        are a :class:`UserError` naming them."""
        factory = self.get(name)
        signature = inspect.signature(factory, eval_str=True)
        try:
            signature.bind(*args, **kwargs)
        except TypeError as error:
            raise UserError(f"{self.kind} '{name}': {error}") from None
        for key, value in kwargs.items():
            parameter = signature.parameters.get(key)
            problem = parameter and type_error(parameter.annotation, value)
            if problem:
                raise UserError(f"{self.kind} '{name}': {key} {problem}")
        return factory(*args, **kwargs)

    def __contains__(self, name: object) -> bool:
        return name in self._factories

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._factories))
