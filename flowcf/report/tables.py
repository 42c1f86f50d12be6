"""Result tables: pandas → CSV, Markdown and LaTeX, with ↑/↓ arrows in the headers."""

import re
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from flowcf.io import atomic_write_text

__all__ = ["aggregate", "arrow_headers", "latex_escape", "to_latex", "write_table"]


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


LATEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "±": r"$\pm$",
    "↑": r"$\uparrow$",
    "↓": r"$\downarrow$",
    "—": "---",
}
_LATEX_PATTERN = re.compile("|".join(re.escape(char) for char in LATEX_SPECIAL))


def latex_escape(text: str) -> str:
    """``text`` as LaTeX source: its special characters (``_ % & $ # { } ~ ^ \\``) escaped,
    ``±``, ``↑`` and ``↓`` as math symbols and ``—`` as an em dash.

    Example:
        >>> print(latex_escape("time_per_factual ↓: 5% ± 1"))
        time\\_per\\_factual $\\downarrow$: 5\\% $\\pm$ 1
    """
    return _LATEX_PATTERN.sub(lambda match: LATEX_SPECIAL[match.group()], text)


def to_latex(frame: pd.DataFrame) -> str:
    """A LaTeX tabular of ``frame`` with every header and cell escaped
    (:func:`latex_escape`) and the best ``mean ± std`` (or number) of each column with an
    arrow in its header in ``\\textbf{}`` (highest under ↑, lowest under ↓; ties all bold)."""
    text = frame.map(lambda v: f"{v:.4g}" if isinstance(v, float) else str(v))
    escaped = text.map(latex_escape)
    for column in [c for c in frame.columns if str(c).endswith(("↑", "↓"))]:
        mean = pd.to_numeric(text[column].str.split(" ± ").str[0], errors="coerce")
        best = mean.max() if column.endswith("↑") else mean.min()
        escaped[column] = escaped[column].where(mean != best, "\\textbf{" + escaped[column] + "}")
    escaped.columns = [latex_escape(str(c)) for c in frame.columns]
    return escaped.to_latex(index=False, escape=False)


def write_table(frame: pd.DataFrame, directory: str | Path, stem: str) -> list[Path]:
    """Writes ``<stem>.csv``, ``<stem>.md`` and ``<stem>.tex`` (:func:`to_latex`) atomically;
    returns the paths."""
    directory = Path(directory)
    texts = {
        ".csv": frame.to_csv(index=False),
        ".md": frame.to_markdown(index=False, floatfmt=".4g") + "\n",
        ".tex": to_latex(frame),
    }
    return [atomic_write_text(directory / f"{stem}{ext}", text) for ext, text in texts.items()]
