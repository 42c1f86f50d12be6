"""Result tables: numbers in the CSV, cells that say how many runs they rest on, LaTeX that
escapes what LaTeX treats specially and bolds the best of the complete cells."""

import math

import pandas as pd
import pytest

from flowcf.pipeline import report_directory
from flowcf.report.tables import aggregate, cell, latex_escape, to_latex, views


def test_latex_escape_special_characters_and_symbols():
    assert latex_escape("a_b 5% R&D $1 #2 {x} ~^") == (
        r"a\_b 5\% R\&D \$1 \#2 \{x\} \textasciitilde{}\textasciicircum{}"
    )
    assert latex_escape(r"0.5 ± 0.1 ↑ ↓ — \x") == (
        r"0.5 $\pm$ 0.1 $\uparrow$ $\downarrow$ --- \textbackslash{}x"
    )


def test_the_latex_table_escapes_headers_and_cells_and_bolds_the_best():
    runs = pd.DataFrame({
        "data": ["german_credit"] * 4,
        "method": ["ppcef", "ppcef", "r&d_100%", "r&d_100%"],
        "validity": [1.0, 0.8, 0.5, 0.7],
        "time_per_factual": [0.2, 0.4, 0.1, 0.1],
    })  # fmt: skip
    directions = {"validity": True, "time_per_factual": False}
    view, bold = views(aggregate(runs, ["data", "method"], list(directions)), directions)
    tex = to_latex(view, bold)
    assert r"validity $\uparrow$ & time\_per\_factual $\downarrow$" in tex
    assert r"german\_credit & ppcef & 2 & \textbf{0.9 $\pm$ 0.14} & 0.3 $\pm$ 0.14" in tex
    assert r"r\&d\_100\% & 2 & 0.6 $\pm$ 0.14 & \textbf{0.1 $\pm$ 0}" in tex
    assert not any(char in tex for char in "±↑↓—")
    assert "_" not in tex.replace(r"\_", "")


def test_a_report_with_a_missing_value_counts_the_run_and_bolds_only_complete_cells():
    # two seeds per method; wachter's seed 1 found no valid counterfactual (l1 NaN), and its
    # one l1 value is the lowest: neither "± 0" nor bold, but "(1 of 2 runs)"
    runs = pd.DataFrame({
        "method": ["ppcef", "ppcef", "wachter", "wachter"],
        "seed": [0, 1, 0, 1],
        "validity": [1.0, 0.9, 0.5, 0.0],
        "l1": [0.3, 0.5, 0.1025, float("nan")],
    })  # fmt: skip
    summary = aggregate(runs, ["method"], ["validity", "l1"])
    assert list(summary.columns) == [
        "method", "runs", "validity_mean", "validity_std", "validity_n", "l1_mean", "l1_std",
        "l1_n",
    ]  # fmt: skip
    assert summary["runs"].tolist() == [2, 2] and summary["l1_n"].tolist() == [2, 1]
    assert summary["l1_mean"].tolist() == pytest.approx([0.4, 0.1025])
    assert summary["l1_std"].iloc[0] == pytest.approx(0.1414, abs=1e-4)
    assert math.isnan(summary["l1_std"].iloc[1])
    view, bold = views(summary, {"validity": True, "l1": False})
    assert view["l1 ↓"].tolist() == ["0.4 ± 0.14", "0.1025 (1 of 2 runs)"]
    assert view["validity ↑"].tolist() == ["0.95 ± 0.071", "0.25 ± 0.35"]
    assert bold["l1 ↓"].tolist() == [True, False]  # the best among the cells of every run
    assert bold["validity ↑"].tolist() == [True, False]
    tex = to_latex(view, bold)
    assert r"\textbf{0.4 $\pm$ 0.14}" in tex and r"0.1025 (1 of 2 runs) \\" in tex


def test_cells_of_one_run_and_of_no_value():
    assert cell(0.5, float("nan"), 1, 1) == "0.5"  # one run: no "± 0"
    assert cell(float("nan"), float("nan"), 0, 3) == "—"
    assert cell(0.25, 0.05, 2, 3) == "0.25 ± 0.05 (2 of 3 runs)"


def test_flowcf_report_of_two_seeds_one_without_a_valid_counterfactual(tmp_path):
    # what `flowcf report` writes from the runs' metrics.csv: seed 1 of wachter found no valid
    # counterfactual, so its l1 (over valid ones) is NaN, and its lower l1 rests on one run
    for seed, ppcef, wachter in [(0, 0.3, 0.1025), (1, 0.5, float("nan"))]:
        run = tmp_path / f"seed{seed}"
        run.mkdir()
        pd.DataFrame({
            "data": "moons", "model": "realnvp", "classifier": "mlp",
            "method": ["ppcef", "wachter"], "seed": seed,
            "validity": [1.0, 0.0 if seed else 0.5], "l1": [ppcef, wachter],
        }).to_csv(run / "metrics.csv", index=False)  # fmt: skip
    report_directory(tmp_path)
    report = pd.read_csv(tmp_path / "report.csv")
    assert report["runs"].tolist() == [2, 2] and report["l1_n"].tolist() == [2, 1]
    assert report["l1_mean"].tolist() == pytest.approx([0.4, 0.1025])
    assert (
        report.drop(columns=["data", "model", "classifier", "method"])
        .dtypes.map(pd.api.types.is_numeric_dtype)
        .all()
    )
    markdown = (tmp_path / "report.md").read_text()
    assert "0.1025 (1 of 2 runs)" in markdown and "0.1025 ±" not in markdown
    tex = (tmp_path / "report.tex").read_text()
    assert r"\textbf{0.4 $\pm$ 0.14}" in tex and r"\textbf{0.1025" not in tex
