"""Result tables: pandas → CSV, Markdown and LaTeX, with ↑/↓ arrows in the headers."""

from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from flowcf.io import atomic_write_text

__all__ = ["aggregate", "arrow_headers", "bold_best", "write_table"]


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


def bold_best(frame: pd.DataFrame) -> pd.DataFrame:
    """For LaTeX: the best ``mean ± std`` (or number) of each column with an arrow in its
    header in ``\\textbf{}`` (highest under ↑, lowest under ↓); ties are all bold."""
    frame = frame.copy()
    for column in [c for c in frame.columns if str(c).endswith(("↑", "↓"))]:
        text = frame[column].map(lambda v: f"{v:.4g}" if isinstance(v, float) else str(v))
        mean = pd.to_numeric(text.str.split(" ± ").str[0], errors="coerce")
        best = mean.max() if column.endswith("↑") else mean.min()
        frame[column] = text.where(mean != best, "\\textbf{" + text + "}")
    return frame


def write_table(frame: pd.DataFrame, directory: str | Path, stem: str) -> list[Path]:
    """Writes ``<stem>.csv``, ``<stem>.md`` and ``<stem>.tex`` (best values in bold) atomically;
    returns the paths."""
    directory = Path(directory)
    texts = {
        ".csv": frame.to_csv(index=False),
        ".md": frame.to_markdown(index=False, floatfmt=".4g") + "\n",
        ".tex": bold_best(frame).to_latex(index=False, float_format="%.4g", escape=False),
    }
    return [atomic_write_text(directory / f"{stem}{ext}", text) for ext, text in texts.items()]
