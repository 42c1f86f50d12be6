"""Published figures beside flowcf's: one table per metric, a row per data set and, per method,
flowcf's mean ± std over its runs beside the reference's figure.

A reference file is a CSV with columns ``data``, ``method`` and one per metric (e.g. the PPCEF
authors' fold means, ``flowcf/report/reference/ppcef_authors.csv``). The ``reference`` config
names it and maps flowcf's data names and metrics onto the file's.

Examples:
    >>> summary = pd.DataFrame({"data": ["moons"], "method": ["ppcef"], "runs": [5],
    ...                         "l2_mean": [0.3], "l2_std": [0.01], "l2_n": [5]})
    >>> reference = pd.DataFrame({"data": ["moons"], "method": ["ppcef"], "l2": [0.3446]})
    >>> side_by_side(summary, reference, {}, {"l2": "l2"})["l2"].to_dict("records")
    [{'data': 'moons', 'ppcef': '0.3 ± 0.01', 'ppcef (reference)': 0.3446}]
"""

from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from flowcf.errors import UserError
from flowcf.report.tables import cell, write_table

__all__ = ["REFERENCES", "read_reference", "side_by_side", "write_reference_tables"]

REFERENCES = Path(__file__).resolve().parent / "reference"
"""The reference files shipped with flowcf, with their provenance (``README.md``)."""


def read_reference(file: str) -> pd.DataFrame:
    """The reference ``file``: a name in :data:`REFERENCES` (without ``.csv``) or a CSV path."""
    path = REFERENCES / f"{file}.csv" if (REFERENCES / f"{file}.csv").is_file() else Path(file)
    if not path.is_file():
        shipped = ", ".join(sorted(p.stem for p in REFERENCES.glob("*.csv")))
        raise UserError(f"reference.file: {file} is neither a CSV file nor one of: {shipped}")
    return pd.read_csv(path)


def side_by_side(
    summary: pd.DataFrame,
    reference: pd.DataFrame,
    data: Mapping[str, str],
    metrics: Mapping[str, str],
) -> dict[str, pd.DataFrame]:
    """Per flowcf metric (a key of ``metrics``, valued by the reference column), a table with a
    row per data set of ``summary`` (an :func:`~flowcf.report.tables.aggregate` over runs) and
    for each method its :func:`~flowcf.report.tables.cell` beside the reference figure (NaN
    where the reference has none). ``data`` maps flowcf's data names to the file's."""
    summary = summary.assign(key=summary["data"].map(lambda name: data.get(name, name)))
    figures = reference.set_index(["data", "method"])
    tables = {}
    for metric, column in metrics.items():
        if f"{metric}_mean" not in summary:
            continue
        table = pd.DataFrame({"data": summary["data"].unique()})
        for method, rows in summary.groupby("method", sort=False):
            rows = rows.set_index("data")
            stats = rows[[f"{metric}_mean", f"{metric}_std", f"{metric}_n", "runs"]]
            cells = {name: cell(*row) for name, row in zip(rows.index, stats.itertuples(
                index=False), strict=True)}  # fmt: skip
            table[method] = table["data"].map(cells)
            keys = [(rows["key"].get(name, name), method) for name in table["data"]]
            table[f"{method} (reference)"] = [
                figures[column].get(key, float("nan")) if column in figures else float("nan")
                for key in keys
            ]
        tables[metric] = table
    return tables


def write_reference_tables(
    summary: pd.DataFrame, directory: str | Path, reference: Mapping
) -> list[Path]:
    """Writes :func:`side_by_side` of the ``reference`` config as ``reference_<metric>.csv``,
    and, with ``—`` where the reference has no figure, ``.md`` and ``.tex`` in ``directory``;
    returns the paths."""
    frame = read_reference(reference["file"])
    tables = side_by_side(summary, frame, reference.get("data") or {}, reference["metrics"])
    return [
        path
        for metric, table in tables.items()
        for path in write_table(table, directory, f"reference_{metric}", view=table.fillna("—"))
    ]
