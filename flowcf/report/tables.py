"""Result tables: pandas → CSV, Markdown and LaTeX, with ↑/↓ arrows in the headers."""

from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from flowcf.io import atomic_write_text

__all__ = ["aggregate", "arrow_headers", "write_table"]


def arrow_headers(frame: pd.DataFrame, directions: dict[str, bool]) -> pd.DataFrame:
    """Renames metric columns to ``name ↑`` (higher is better) or ``name ↓``."""
    return frame.rename(columns={k: f"{k} {'↑' if up else '↓'}" for k, up in directions.items()})


def aggregate(runs: pd.DataFrame, by: list[str], metrics: Iterable[str]) -> pd.DataFrame:
    """Mean ± std of each metric over the runs in each group (e.g. over seeds), as text,
    with the number of runs in column ``runs``; "—" where a metric does not apply (NaN)."""
    metrics = [m for m in metrics if m in runs]
    grouped = runs.groupby(by, sort=False)[metrics]
    mean, std = grouped.mean(), grouped.std().fillna(0.0)
    table = mean.map(lambda v: f"{v:.4g}") + " ± " + std.map(lambda v: f"{v:.2g}")
    table = table.mask(mean.isna(), "—")
    table.insert(0, "runs", grouped.size())
    return table.reset_index()


def write_table(frame: pd.DataFrame, directory: str | Path, stem: str) -> list[Path]:
    """Writes ``<stem>.csv``, ``<stem>.md`` and ``<stem>.tex`` atomically; returns the paths."""
    directory = Path(directory)
    texts = {
        ".csv": frame.to_csv(index=False),
        ".md": frame.to_markdown(index=False, floatfmt=".4g") + "\n",
        ".tex": frame.to_latex(index=False, float_format="%.4g"),
    }
    return [atomic_write_text(directory / f"{stem}{ext}", text) for ext, text in texts.items()]
