"""``experiment=ppcef_benchmark`` against the PPCEF authors' own figures (slow: 5 folds of
training and 500-step searches per data set). On every data set flowcf's PPCEF must reach the
authors' validity and plausibility less 0.01, and at most 1.1 × their L2, as read from the
reference file shipped with flowcf (``flowcf/report/reference/ppcef_authors.csv``)."""

import pandas as pd
import pytest

from flowcf.report.reference import read_reference

pytestmark = pytest.mark.slow

AUTHORS = read_reference("ppcef_authors").set_index(["data", "method"])


@pytest.mark.parametrize("data", ["moons", "law", "blobs", "wine", "digits"])
def test_ppcef_reaches_the_authors_figures(flowcf, tmp_path, data):
    flowcf("run", "experiment=ppcef_benchmark", f"data=ppcef/{data}", "~methods.wachter",
           "~methods.dicoflex", "hydra.run.dir=run", timeout=6 * 3600)  # fmt: skip
    ours = pd.read_csv(tmp_path / "run" / "table.csv").set_index("method").loc["ppcef"]
    theirs = AUTHORS.loc[(data, "ppcef")]
    assert ours["runs"] == 5
    assert ours["validity_mean"] >= theirs["validity"] - 0.01
    assert ours["plausibility_mean"] >= theirs["plausibility"] - 0.01
    assert ours["l2_mean"] <= 1.1 * theirs["l2"]
    assert (tmp_path / "run" / "reference_l2.tex").is_file()
