"""The schema of a table, and reading a CSV file checked against it.

A schema is a small YAML mapping (inline in ``conf/data/<name>.yaml`` or a file passed as
``data.schema=...``)::

    features:                 # every column but the target, in the file's order
      duration: integer       # continuous | integer | categorical | ordinal
      savings: ordinal
      status_sex: categorical
      age: integer
    orders:                   # the categories of each ordinal feature, lowest first
      savings: [A61, A62, A63, A64]
    immutable: [status_sex]   # never changed by a counterfactual
    monotone: {age: increasing}   # increasing | decreasing
    ranges:                   # [low, high] in the feature's units (an ordinal's: categories);
      duration: [1, 72]       # null keeps the training split's bound on that side, .inf or
      age: [18, null]         # -.inf leaves that side unbounded; default: both from training
    target: credit
    classes: [1, 2]           # the target's values; labels 0, 1, ... in this order ...
    positive: 1               # ... except that the positive class gets the last label

Every problem with the file is a :class:`~flowcf.errors.UserError` naming the file, the column
and the row (the file's line number, counting from 1).
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from flowcf.errors import UserError

__all__ = ["KINDS", "Schema", "read_table"]

KINDS = ("continuous", "integer", "categorical", "ordinal")
NUMERIC = ("continuous", "integer")
DIRECTIONS = {"increasing": 1, "decreasing": -1}


@dataclass
class Schema:
    """Feature names and kinds, actionability, and the target of a table.

    Attributes:
        features: Feature name → kind (one of :data:`KINDS`), in the file's column order.
        target: The target column.
        classes: The target's values, in label order (the positive class last).
        orders: Ordinal feature → its categories, lowest first.
        immutable: Features a counterfactual must not change.
        monotone: Feature → ``increasing`` or ``decreasing``.
        categories: Categorical feature → its declared categories (others are errors); features
            not listed take the categories of the training split.
        ranges: Numeric or ordinal feature → ``[low, high]`` of its domain, each a number (an
            ordinal's category) or ``None`` for the training split's min or max.
        source: Where the schema came from, for messages.
    """

    features: dict[str, str]
    target: str
    classes: list
    orders: dict[str, list] = field(default_factory=dict)
    immutable: list[str] = field(default_factory=list)
    monotone: dict[str, str] = field(default_factory=dict)
    categories: dict[str, list] = field(default_factory=dict)
    ranges: dict[str, list] = field(default_factory=dict)
    source: str = "schema"

    @classmethod
    def load(cls, spec: Mapping | str) -> "Schema":
        """A schema from a mapping or from the YAML file at path ``spec``."""
        source = "schema"
        if spec == "???":  # the config's "missing" marker: data=csv without data.schema
            raise UserError("data.schema is required: set data.schema=<yaml> (conf/data/csv.yaml)")
        if isinstance(spec, str):
            source = spec
            if not Path(spec).is_file():
                raise UserError(f"schema file {spec} does not exist; set data.schema=<yaml>")
            spec = yaml.safe_load(Path(spec).read_text()) or {}
        spec = dict(spec)
        for key in ("features", "target", "classes"):
            if not spec.get(key):
                raise UserError(f"{source}: the schema needs '{key}'")
        positive = spec.pop("positive", None)
        classes = [str(c) for c in spec.pop("classes")]
        if positive is not None:
            if str(positive) not in classes:
                raise UserError(f"{source}: positive class {positive!r} is not in {classes}")
            classes = [c for c in classes if c != str(positive)] + [str(positive)]
        try:
            schema = cls(**spec, classes=classes, source=source)
        except TypeError as error:
            raise UserError(f"{source}: {error}") from None
        schema.check()
        return schema

    def check(self) -> None:
        """Fails on an unknown kind, direction or feature name."""
        for name, kind in self.features.items():
            if kind not in KINDS:
                raise UserError(
                    f"{self.source}: feature '{name}' has unknown kind '{kind}'; choose one of: "
                    + ", ".join(KINDS)
                )
            if kind == "ordinal" and not self.orders.get(name):
                raise UserError(f"{self.source}: ordinal feature '{name}' needs orders.{name}")
        if not isinstance(self.ranges, Mapping):
            raise UserError(f"{self.source}: ranges must map features to [low, high]")
        named = [*self.immutable, *self.monotone, *self.orders, *self.categories, *self.ranges]
        for name in named:
            if name not in self.features:
                raise UserError(f"{self.source}: '{name}' is not one of the features")
        for name, direction in self.monotone.items():
            if direction not in DIRECTIONS:
                raise UserError(f"{self.source}: monotone.{name} must be increasing or decreasing")
        for name in self.ranges:
            self.bounds(name)

    def bounds(self, name: str) -> tuple[float | None, float | None]:
        """The ``ranges`` bounds of feature ``name`` as numbers (an ordinal's as ranks), ``None``
        where the training split gives it; a malformed range is a :class:`UserError`."""
        spec, kind = self.ranges.get(name, (None, None)), self.features[name]
        if kind == "categorical":
            raise UserError(f"{self.source}: ranges.{name}: a categorical feature has no range")
        accepted = (
            f"[low, high] with categories of orders.{name} or null"
            if kind == "ordinal"
            else "[low, high] with numbers, null (the training bound) or ±.inf (none)"
        )
        if not isinstance(spec, list | tuple) or len(spec) != 2:
            raise UserError(f"{self.source}: ranges.{name} must be {accepted}, got {spec!r}")
        order = [str(c) for c in self.orders.get(name, [])]
        try:
            low, high = (
                None if v is None else order.index(str(v)) if order else _number(v) for v in spec
            )
        except (TypeError, ValueError):
            raise UserError(
                f"{self.source}: ranges.{name} must be {accepted}, got {spec!r}"
            ) from None
        if low is not None and high is not None and low > high:
            raise UserError(f"{self.source}: ranges.{name} has low > high: {spec!r}")
        return low, high

    @property
    def columns(self) -> list[str]:
        """Every column of the file: the features and the target."""
        return [*self.features, self.target]


def _number(value) -> float:
    """A range bound as a float (YAML reads ``1e3`` as text); a ValueError if none."""
    if isinstance(value, bool):
        raise ValueError(value)
    number = float(value)
    if number != number:
        raise ValueError(value)
    return number


def read_table(
    path: str, schema: Schema, *, separator: str = ",", header: bool = True
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Reads a CSV file and checks it against ``schema``.

    Arguments:
        path: The file.
        schema: Its schema.
        separator: The field separator.
        header: Whether the first line names the columns (else the schema's order is used).

    Returns:
        The features (numbers as floats, categories as strings), the labels in
        :math:`0, \\dots, C - 1` and each row's line number in the file.
    """
    if not Path(path).is_file():
        raise UserError(f"data file {path} does not exist; put the CSV there or set data.path")
    try:
        frame = pd.read_csv(
            path, sep=separator, header=0 if header else None, dtype=str, skipinitialspace=True
        )
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise UserError(f"{path}: {str(error).strip()}") from None
    if frame.empty:
        raise UserError(f"{path} has no data rows; a table needs rows of every class")
    columns = schema.columns
    if not header:
        if frame.shape[1] != len(columns):
            raise UserError(
                f"{path}: {frame.shape[1]} columns, but the schema ({schema.source}) has "
                f"{len(columns)}: {', '.join(columns)}"
            )
        frame.columns = columns
    missing = [c for c in columns if c not in frame.columns]
    extra = [c for c in frame.columns if c not in columns]
    if missing or extra:
        problem = f"column '{missing[0]}' is missing" if missing else f"column '{extra[0]}'"
        raise UserError(f"{path}: {problem}{'' if missing else ' is not in the schema'}"
                        f" ({schema.source})")  # fmt: skip
    lines = np.arange(len(frame)) + (2 if header else 1)
    _check_values(frame, schema, path, lines)
    numeric = [name for name, kind in schema.features.items() if kind in NUMERIC]
    frame[numeric] = frame[numeric].astype(float)
    labels = frame.pop(schema.target).map({c: i for i, c in enumerate(schema.classes)})
    return frame[list(schema.features)], labels.to_numpy(dtype=np.int64), lines


def _check_values(frame: pd.DataFrame, schema: Schema, path: str, lines: np.ndarray) -> None:
    """Fails at the first empty cell, non-number in a numeric column or unknown class."""

    def fail(column: str, bad: pd.Series, problem: str) -> None:
        row = int(np.flatnonzero(bad.to_numpy())[0])
        value = frame[column].iloc[row]
        raise UserError(f"{path}: column '{column}', row {lines[row]}: {problem.format(value)}")

    for column in frame.columns:
        if frame[column].isna().any():
            fail(column, frame[column].isna(), "missing value (NaN or an empty cell)")
    for name, kind in schema.features.items():
        numbers = pd.to_numeric(frame[name], errors="coerce")
        if kind in NUMERIC and numbers.isna().any():
            fail(name, numbers.isna(), "{!r} is not a number")
    unknown = ~frame[schema.target].isin(schema.classes)
    if unknown.any():
        fail(schema.target, unknown, f"class {{!r}} is not one of the schema's {schema.classes}")
