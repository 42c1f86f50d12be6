"""Result tables: the LaTeX output escapes what LaTeX treats specially and bolds the best."""

import pandas as pd

from flowcf.report.tables import aggregate, arrow_headers, latex_escape, to_latex


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
        "validity": [1.0, 0.8, 0.5, float("nan")],
        "time_per_factual": [0.2, 0.4, 0.1, 0.1],
    })  # fmt: skip
    table = arrow_headers(
        aggregate(runs, ["data", "method"], ["validity", "time_per_factual"]),
        {"validity": True, "time_per_factual": False},
    )
    tex = to_latex(table)
    assert r"validity $\uparrow$ & time\_per\_factual $\downarrow$" in tex
    assert r"german\_credit & ppcef & 2 & \textbf{0.9 $\pm$ 0.14} & 0.3 $\pm$ 0.14" in tex
    assert r"r\&d\_100\% & 2 & 0.5 $\pm$ 0 & \textbf{0.1 $\pm$ 0}" in tex
    assert not any(char in tex for char in "±↑↓—")
    assert "_" not in tex.replace(r"\_", "")
