"""What a config value may be: rules, and the annotations that attach them to parameters.

A registered factory declares its options' rules in its signature, so that the factory stays
the one source of truth for what it accepts::

    def realnvp(dim: int, context_dim: int = 0, *, layers: Count = 8, sigma: Positive = 0.4)

:func:`rule_of` reads a parameter's annotation (``Count``, ``Positive | None``, ``bool``,
``Annotated[str, one_of("a", "b")]``); :meth:`Rule.check` raises a one-line
:class:`~flowcf.errors.UserError` naming the key and what it accepts, e.g.
``model.layers must be a whole number ≥ 1, got 0``.

Examples:
    >>> rule_of(Count).check("model.layers", 0)
    Traceback (most recent call last):
    ...
    flowcf.errors.UserError: model.layers must be a whole number ≥ 1, got 0
"""

import difflib
import inspect
import math
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from flowcf.errors import UserError

__all__ = [
    "Count",
    "Fraction",
    "Natural",
    "Node",
    "NonNegative",
    "Positive",
    "Quantile",
    "Rule",
    "at_least",
    "between",
    "check_options",
    "closest",
    "each",
    "one_of",
    "optional",
    "rule_of",
    "unknown_key",
    "whole",
]


@dataclass(frozen=True)
class Rule:
    """A test of one config value and what it accepts, in words (``a whole number ≥ 1``)."""

    accepts: str
    test: Callable[[Any], bool]

    def check(self, key: str, value: Any) -> None:
        """Raises a :class:`UserError` naming ``key`` unless ``value`` passes."""
        if not self.test(value):
            raise UserError(f"{key} must be {self.accepts}, got {value!r}")


@dataclass(frozen=True)
class Node:
    """A config node checked as a whole by ``check(key, value)`` (a method's loss terms, a
    ``train`` section), for ``Annotated[dict, Node(check)]``."""

    check: Callable[[str, Any], None]


def is_whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def whole(low: int | None = None) -> Rule:
    """A whole number, at least ``low`` if given."""
    if low is None:
        return Rule("a whole number", is_whole)
    return Rule(f"a whole number ≥ {low}", lambda v: is_whole(v) and v >= low)


def at_least(low: float, *, strict: bool = False) -> Rule:
    """A finite number ``≥ low`` (``> low`` when ``strict``)."""
    sign = ">" if strict else "≥"
    return Rule(
        f"a number {sign} {low:g}", lambda v: is_number(v) and (v > low if strict else v >= low)
    )


def between(low: float, high: float, *, closed: bool = False) -> Rule:
    """A number in the open interval (``low``, ``high``), or the closed one."""
    if closed:
        return Rule(
            f"a number in [{low:g}, {high:g}]", lambda v: is_number(v) and low <= v <= high
        )
    return Rule(f"a number in ({low:g}, {high:g})", lambda v: is_number(v) and low < v < high)


def one_of(*choices: str) -> Rule:
    """One of ``choices`` (e.g. ``one_of(*BASES)``: what a registry holds)."""
    return Rule(f"one of: {', '.join(choices)}", lambda v: isinstance(v, str) and v in choices)


def optional(rule: Rule) -> Rule:
    """``rule``, or null."""
    return Rule(f"{rule.accepts} or null", lambda v: v is None or rule.test(v))


@dataclass(frozen=True)
class Each(Rule):
    """:func:`each`'s rule, which names the first bad item (``metrics.names[1]``)."""

    item: Rule | None = None

    def check(self, key: str, value: Any) -> None:
        if not isinstance(value, list | tuple):
            raise UserError(f"{key} must be a list, got {value!r}")
        for index, item in enumerate(value):
            self.item.check(f"{key}[{index}]", item)


def each(rule: Rule) -> Rule:
    """A list whose every item passes ``rule``."""
    return Each(
        f"a list of items each {rule.accepts}",
        lambda v: isinstance(v, list | tuple) and all(rule.test(item) for item in v),
        rule,
    )


#: A whole number ≥ 1: layers, widths, epochs, steps, samples.
Count = Annotated[int, whole(1)]
#: A whole number ≥ 0: patience, depth of hidden layers, workers.
Natural = Annotated[int, whole(0)]
#: A number > 0: rates, scales, standard deviations, temperatures.
Positive = Annotated[float, at_least(0, strict=True)]
#: A number ≥ 0: weights, margins, decays, noise.
NonNegative = Annotated[float, at_least(0)]
#: A quantile, in (0, 1).
Quantile = Annotated[float, between(0, 1)]
#: A probability or share, in [0, 1].
Fraction = Annotated[float, between(0, 1, closed=True)]

#: The rules of plain annotations.
SCALARS = {
    int: whole(),
    float: Rule("a number", is_number),
    bool: Rule("true or false", lambda v: isinstance(v, bool)),
    str: Rule("text", lambda v: isinstance(v, str)),
}


def rule_of(annotation: Any) -> Rule | Node | None:
    """The rule of a parameter's annotation: its ``Annotated`` rule, that of a plain scalar type
    (``int``, ``float``, ``bool``, ``str``), either or null for ``X | None``; ``None`` for an
    annotation without one (a tensor, a dict, ...)."""
    if typing.get_origin(annotation) is Annotated:
        return annotation.__metadata__[0]
    if typing.get_origin(annotation) in (types.UnionType, typing.Union):
        others = [a for a in typing.get_args(annotation) if a is not type(None)]
        inner = rule_of(others[0]) if len(others) == 1 else None
        return inner and optional(inner)
    return SCALARS.get(annotation)


def closest(key: str, known: Iterable[str]) -> list[str]:
    """The known dotted keys closest to the unknown ``key``: its siblings most like its last
    part (``method.max_steps`` for ``method.max_step``), else the keys most like it whole."""
    known = list(dict.fromkeys(known))
    parent, _, leaf = key.rpartition(".")
    siblings = [k.rpartition(".")[2] for k in known if k.rpartition(".")[0] == parent]
    if siblings:
        prefix = f"{parent}." if parent else ""
        return [prefix + match for match in difflib.get_close_matches(leaf, siblings, n=3)]
    return difflib.get_close_matches(key, known, n=3)


def unknown_key(key: str, known: Iterable[str], otherwise: str) -> UserError:
    """The error of an unknown key: the closest known ones, or ``otherwise``."""
    close = closest(key, known)
    hint = f"did you mean {' or '.join(close)}?" if close else otherwise
    return UserError(f"unknown key {key}; {hint}")


def check_options(
    key: str, options: Mapping[str, Any], parameters: Mapping[str, inspect.Parameter], owner: str
) -> None:
    """Checks config node ``key`` against the ``parameters`` of the function ``owner`` (e.g.
    ``flow 'realnvp'``) it is passed to: each option is a parameter and passes the rule of its
    annotation, and none without a default is missing. A misspelt option gets the closest
    ones: ``unknown key method.max_step; did you mean method.max_steps?``."""
    for option, value in options.items():
        if option not in parameters:
            takes = f"{owner} takes: {', '.join(parameters) or 'no options'}"
            raise unknown_key(f"{key}.{option}", [f"{key}.{p}" for p in parameters], takes)
        rule = rule_of(parameters[option].annotation)
        if rule is not None:
            rule.check(f"{key}.{option}", value)
    missing = [k for k, p in parameters.items() if p.default is p.empty and k not in options]
    if missing:
        raise UserError(f"{key}.{missing[0]} is required by {owner}")
