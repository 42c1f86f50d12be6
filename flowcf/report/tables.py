"""Result tables: numbers in CSV; Markdown and LaTeX views with ↑/↓ arrows in the headers.

A summary over runs (:func:`aggregate`) is numeric: per metric its mean, std and the number of
runs with a value. Its views (:func:`views`) say when a cell rests on fewer runs than its row, and
bold the best only among cells that rest on every run.
"""

import re
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from flowcf.io import atomic_write_text

__all__ = [
    "aggregate",
    "arrow_headers",
    "best_cells",
    "cell",
    "latex_escape",
    "to_latex",
    "views",
    "write_table",
]


def arrow_headers(frame: pd.DataFrame, directions: dict[str, bool]) -> pd.DataFrame:
    """Renames metric columns to ``name ↑`` (higher is better) or ``name ↓``."""
    return frame.rename(columns={k: f"{k} {'↑' if up else '↓'}" for k, up in directions.items()})


def aggregate(runs: pd.DataFrame, by: list[str], metrics: Iterable[str]) -> pd.DataFrame:
    """Numbers per group of runs (e.g. over seeds): ``runs``, the number of runs, and for each
    metric ``<metric>_mean``, ``<metric>_std`` and ``<metric>_n``, the number of runs with a
    value. A run without one (NaN: e.g. ``l1`` when it found no valid counterfactual) counts in
    ``runs`` but not in ``_n``; the std of fewer than two values is NaN.

    Examples:
        >>> runs = pd.DataFrame({"method": ["a", "a"], "l1": [0.1025, float("nan")]})
        >>> aggregate(runs, ["method"], ["l1"]).to_dict("records")
        [{'method': 'a', 'runs': 2, 'l1_mean': 0.1025, 'l1_std': nan, 'l1_n': 1}]
    """
    metrics = [m for m in metrics if m in runs]
    grouped = runs.groupby(by, sort=False)
    stats = grouped[metrics].agg(["mean", "std", "count"])
    stats.columns = [f"{m}_{'n' if stat == 'count' else stat}" for m, stat in stats.columns]
    return grouped.size().rename("runs").to_frame().join(stats).reset_index()


def cell(mean: float, std: float, n: int, runs: int) -> str:
    """A metric's cell: ``mean ± std``, or the value alone when it rests on one run, followed by
    ``(n of runs runs)`` when some runs have no value; ``—`` when none has.

    Examples:
        >>> cell(0.1025, float("nan"), 1, 2), cell(1.34, 0.029, 2, 2), cell(0.5, 0.0, 1, 1)
        ('0.1025 (1 of 2 runs)', '1.34 ± 0.029', '0.5')
    """
    if n == 0:
        return "—"
    text = f"{mean:.4g}" if n == 1 else f"{mean:.4g} ± {std:.2g}"
    return text if n == runs else f"{text} ({n} of {runs} runs)"


def best_cells(values: pd.DataFrame, directions: dict[str, bool]) -> pd.DataFrame:
    """Whether each value is the best of its column (highest where ``directions`` says higher
    is better, else lowest; ties all best; NaN never)."""
    return pd.DataFrame(
        {c: values[c] == (values[c].max() if directions[c] else values[c].min()) for c in values}
    )


def views(summary: pd.DataFrame, directions: dict[str, bool]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The formatted view of an :func:`aggregate` summary (a :func:`cell` per metric, arrows in
    the headers) and where it is best: only among cells that rest on every run of their row."""
    metrics = list(directions)
    keys = summary.columns[: summary.columns.get_loc("runs") + 1]
    text = summary[keys].copy()
    for m in metrics:
        stats = summary[[f"{m}_mean", f"{m}_std", f"{m}_n", "runs"]]
        text[m] = [cell(*row) for row in stats.itertuples(index=False)]
    complete = pd.DataFrame(
        {m: summary[f"{m}_mean"].where(summary[f"{m}_n"] == summary["runs"]) for m in metrics}
    )
    bold = best_cells(complete, directions)
    return arrow_headers(text, directions), arrow_headers(bold, directions)


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

    Examples:
        >>> print(latex_escape("time_per_factual ↓: 5% ± 1"))
        time\\_per\\_factual $\\downarrow$: 5\\% $\\pm$ 1
    """
    return _LATEX_PATTERN.sub(lambda match: LATEX_SPECIAL[match.group()], text)


def to_latex(frame: pd.DataFrame, bold: pd.DataFrame | None = None) -> str:
    """A LaTeX tabular of ``frame`` with every header and cell escaped (:func:`latex_escape`),
    numbers to 4 significant digits, and the cells where ``bold`` (same index, any of the
    columns) is true in ``\\textbf{}``."""
    text = frame.map(lambda v: f"{v:.4g}" if isinstance(v, float) else str(v))
    escaped = text.map(latex_escape)
    for column in [] if bold is None else bold.columns:
        escaped[column] = escaped[column].where(~bold[column], "\\textbf{" + escaped[column] + "}")
    escaped.columns = [latex_escape(str(c)) for c in frame.columns]
    return escaped.to_latex(index=False, escape=False)


def write_table(
    frame: pd.DataFrame,
    directory: str | Path,
    stem: str,
    view: pd.DataFrame | None = None,
    bold: pd.DataFrame | None = None,
) -> list[Path]:
    """Writes ``frame`` as ``<stem>.csv`` and its formatted ``view`` (default: ``frame``
    itself) as ``<stem>.md`` and ``<stem>.tex`` (:func:`to_latex` with ``bold``), atomically;
    returns the paths."""
    directory, view = Path(directory), frame if view is None else view
    texts = {
        ".csv": frame.to_csv(index=False),
        ".md": view.to_markdown(index=False, floatfmt=".4g") + "\n",
        ".tex": to_latex(view, bold),
    }
    return [atomic_write_text(directory / f"{stem}{ext}", text) for ext, text in texts.items()]
