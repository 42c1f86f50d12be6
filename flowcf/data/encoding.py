"""Encoding a table for the models, and back: one-hot categories, scaled numbers.

Numeric (continuous, integer) features are scaled with :func:`~flowcf.data.base.fit_scaler`,
ordinal features become their scaled rank, categorical features one one-hot column per category.
The encoder is fitted on the training split, kept with the data set and inverted for output, so
counterfactuals come back in the table's own units and category names. Fitting also sets each
numeric and ordinal feature's range: the training split's min and max, or the schema's
``ranges`` where it gives a bound (whole numbers inward for integers and ordinals).

Examples:
    >>> schema = Schema({"age": "integer", "sex": "categorical"}, "y", ["0", "1"],
    ...                 immutable=["sex"], monotone={"age": "increasing"})
    >>> frame = pd.DataFrame({"age": [20.0, 40.0], "sex": ["f", "m"]})
    >>> encoder = TabularEncoder(schema, "minmax").fit(frame)
    >>> encoder.names
    ['age', 'sex=f', 'sex=m']
    >>> encoder.transform(frame, [2, 3], "demo.csv")
    array([[0., 1., 0.],
           [1., 0., 1.]], dtype=float32)
"""

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch

from flowcf.data.base import fit_scaler
from flowcf.data.constraints import Constraints
from flowcf.data.schema import DIRECTIONS, Schema
from flowcf.errors import UserError

__all__ = ["TabularEncoder"]


class TabularEncoder:
    """Maps a table's features to model features and back (fit on the training split).

    Arguments:
        schema: The table's schema.
        scaling: ``"standard"`` or ``"minmax"`` for numeric and ordinal features.
        values: Category code → human-readable name, per feature (e.g. German credit's
            ``values_maps.json``); its codes are the declared categories of those features.
    """

    def __init__(self, schema: Schema, scaling: str, values: dict[str, dict] | None = None):
        self.schema, self.scaling, self.values = schema, scaling, values or {}

    def fit(self, frame: pd.DataFrame) -> "TabularEncoder":
        """Learns the categories and the scaler from the training rows."""
        schema = self.schema
        self.categories = {
            name: [str(c) for c in schema.categories.get(name) or self.values.get(name)
                   or sorted(frame[name].unique())]
            for name, kind in schema.features.items() if kind == "categorical"
        }  # fmt: skip
        self.scaled = [name for name, kind in schema.features.items() if kind != "categorical"]
        numbers = self._numbers(frame, None, "")
        self.shift, self.scale = fit_scaler(numbers, self.scaling)
        self.low, self.high = numbers.min(axis=0), numbers.max(axis=0)
        for j, name in enumerate(self.scaled):
            self.low[j], self.high[j] = self._range(name, self.low[j], self.high[j])
        return self

    def _range(self, name: str, low: float, high: float) -> tuple[float, float]:
        """Feature ``name``'s range: the schema's bounds, else the training ones; whole numbers
        inward for integers and ordinals, so rounding a value in range stays in range."""
        given = self.schema.bounds(name)
        low, high = (t if g is None else g for g, t in zip(given, (low, high), strict=True))
        if self.schema.features[name] != "continuous":
            low, high = np.ceil(low), np.floor(high)
        if low > high:
            raise UserError(
                f"{self.schema.source}: ranges.{name} leaves no value of '{name}' between the "
                f"bounds {low:g} and {high:g} (the training split's where the schema gives null)"
            )
        return low, high

    def _numbers(self, frame: pd.DataFrame, lines: Sequence[int] | None, path: str) -> np.ndarray:
        """The numeric and ordinal features as numbers (ordinals as ranks), unscaled."""
        columns = []
        for name in self.scaled:
            order = self.schema.orders.get(name)
            column = frame[name] if order is None else self._codes(frame, name, order, lines, path)
            columns.append(np.asarray(column, dtype=np.float64))
        return np.stack(columns, axis=1) if columns else np.zeros((len(frame), 0))

    def _codes(self, frame, name, categories, lines, path) -> np.ndarray:
        """Each row's index into ``categories``; an unknown category is a UserError."""
        values = frame[name].astype(str)
        index = {str(c): i for i, c in enumerate(categories)}
        codes = values.map(index).fillna(-1).to_numpy(dtype=np.int64)
        if lines is not None and (codes < 0).any():
            row = int(np.flatnonzero(codes < 0)[0])
            raise UserError(
                f"{path}: column '{name}', row {lines[row]}: unknown category "
                f"{values.iloc[row]!r} (known: {', '.join(map(str, categories))}, from the "
                "schema or the training rows)"
            )
        return codes

    @property
    def names(self) -> list[str]:
        """The encoded column names: numeric and ordinal features, then ``feature=category``."""
        return [*self.scaled, *(f"{n}={c}" for n, cs in self.categories.items() for c in cs)]

    def transform(self, frame: pd.DataFrame, lines: Sequence[int], path: str) -> np.ndarray:
        """Encodes rows (``lines``: their line numbers in ``path``, for messages), float32."""
        numbers = (self._numbers(frame, lines, path) - self.shift) / self.scale
        one_hots = [
            np.eye(len(categories))[self._codes(frame, name, categories, lines, path)]
            for name, categories in self.categories.items()
        ]
        return np.concatenate([numbers, *one_hots], axis=1).astype(np.float32)

    def inverse(self, x: np.ndarray) -> pd.DataFrame:
        """Decodes encoded rows (N, D) to the table's units and category names."""
        numbers = x[:, : len(self.scaled)] * self.scale + self.shift
        columns, start = {}, len(self.scaled)
        for j, name in enumerate(self.scaled):
            kind, order = self.schema.features[name], self.schema.orders.get(name)
            value = numbers[:, j] if kind == "continuous" else np.round(numbers[:, j]).astype(int)
            if order is not None:
                value = np.asarray(order)[np.clip(value, 0, len(order) - 1).astype(int)]
            columns[name] = value
        for name, categories in self.categories.items():
            chosen = x[:, start : start + len(categories)].argmax(axis=1)
            columns[name] = np.asarray(categories, dtype=object)[chosen]
            start += len(categories)
        frame = pd.DataFrame(columns)[list(self.schema.features)]
        return frame.apply(lambda c: c.map(self.values[c.name]) if c.name in self.values else c)

    def constraints(self) -> Constraints:
        """What counterfactuals may be, per encoded column."""
        schema, names = self.schema, list(self.schema.features)
        per_feature = [*self.scaled, *(n for n, cs in self.categories.items() for _ in cs)]
        width = len(self.scaled)
        groups = []
        for categories in self.categories.values():
            groups.append(list(range(width, width + len(categories))))
            width += len(categories)
        ones = np.ones(width - len(self.scaled))

        def column(values) -> torch.Tensor:
            return torch.as_tensor(np.asarray(values, dtype=np.float64), dtype=torch.float32)

        return Constraints(
            feature=torch.as_tensor([names.index(n) for n in per_feature]),
            names=names,
            direction=column([DIRECTIONS.get(schema.monotone.get(n), 0) for n in per_feature]),
            mutable=column([n not in schema.immutable for n in per_feature]),
            integer=column([schema.features[n] in ("integer", "ordinal") for n in per_feature]),
            shift=column([*self.shift, *ones * 0]),
            scale=column([*self.scale, *ones]),
            low=column([*(self.low - self.shift) / self.scale, *ones * 0]),
            high=column([*(self.high - self.shift) / self.scale, *ones]),
            groups=groups,
        )
