"""Tables with a schema: German credit and any CSV file.

``data=csv data.path=<file> data.schema=<yaml>`` reads a user's table (HELOC, Adult, their own)
described by a :class:`~flowcf.data.schema.Schema`; ``data=german_credit`` is the same loader
with the schema of the Statlog German credit data inline in ``conf/data/german_credit.yaml``.
The split is stratified (optionally one fold of ``data.folds``); the encoder is fitted on the
training rows and travels with the data set, so counterfactuals are written in the table's own
units and category names.

References:
    | Statlog (German Credit Data), UCI Machine Learning Repository (Hofmann, 1994)
    | https://doi.org/10.24432/C5NC77
"""

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import torch
from torch import Tensor

from flowcf.data.base import DATASETS, Dataset, split_indices
from flowcf.data.encoding import TabularEncoder
from flowcf.data.schema import Schema, read_table
from flowcf.errors import UserError

__all__ = ["TabularDataset", "load_table"]


@dataclass
class TabularDataset(Dataset):
    """A :class:`~flowcf.data.base.Dataset` of encoded table rows, with its encoder."""

    encoder: TabularEncoder = field(kw_only=True)

    def frame(self, x: Tensor) -> pd.DataFrame:
        """Rows in the table's own units and category names."""
        return self.encoder.inverse(x.detach().cpu().numpy())


def read_values(path: str | None) -> dict[str, dict]:
    """Category code → name per feature from a JSON file (``None``: no names)."""
    if path is None:
        return {}
    if not Path(path).is_file():
        raise UserError(f"category names file {path} does not exist; set data.values=null")
    return json.loads(Path(path).read_text())


@DATASETS.register("csv")
@DATASETS.register("heloc")
@DATASETS.register("german_credit")
def load_table(cfg: Mapping, seed: int) -> TabularDataset:
    """Reads ``cfg["path"]`` against ``cfg["schema"]``, splits, encodes and returns it."""
    schema = Schema.load(cfg["schema"])
    path = str(cfg["path"])
    frame, y, lines = read_table(path, schema, separator=cfg["separator"], header=cfg["header"])
    if len(set(y)) != len(schema.classes):
        raise UserError(f"{path}: the target has no row of some class in {schema.classes}")
    rows = split_indices(
        y, seed=seed, val=cfg["val"], test=cfg["test"], folds=cfg.get("folds"),
        fold=cfg.get("fold", 0),
    )  # fmt: skip
    encoder = TabularEncoder(schema, cfg["scaling"], read_values(cfg.get("values")))
    encoder.fit(frame.iloc[rows[0]])
    splits = [
        (
            torch.as_tensor(encoder.transform(frame.iloc[r], lines[r], path)),
            torch.as_tensor(y[r]),
        )
        for r in rows
    ]
    constraints = encoder.constraints()
    located = {"path": path, "schema": cfg["schema"], "values": cfg.get("values")}
    return TabularDataset(
        *splits[0],
        *splits[1],
        *splits[2],
        num_classes=len(schema.classes),
        feature_names=encoder.names,
        name=cfg["name"],
        shift=constraints.shift,
        scale=constraints.scale,
        constraints=constraints,
        files={key: [Path(value)] for key, value in located.items() if isinstance(value, str)},
        encoder=encoder,
    )
