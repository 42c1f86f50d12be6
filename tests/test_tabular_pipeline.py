"""German credit and user CSVs end to end through ``flowcf`` in this process, on tiny settings.

The issue's figures at full size (validity ≥ 0.95, ≥ 5 distinct valid DiCoFlex counterfactuals
per factual) are the ``slow`` tests at the end.
"""

import os
from pathlib import Path

import pandas as pd
import pytest
import yaml

from flowcf.data import DATASETS

DATA = Path(os.environ.get("FLOWCF_DATA", Path(__file__).parents[2] / "shared" / "data"))
CONF = Path(__file__).parents[1] / "conf" / "data"
needs_credit = pytest.mark.skipif(
    not (DATA / "german_credit").is_dir(), reason=f"no German credit in {DATA}"
)
TINY = [
    "model.layers=2",
    "model.hidden=16",
    "model.train.epochs=3",
    "classifier.hidden=16",
    "classifier.train.epochs=100",
    "factuals.limit=8",
    "progress=false",
    "threads=1",
]
TINY_DICOFLEX = ["flow.layers=2", "flow.hidden=16", "train.epochs=2", "num_samples=20"]


def training_range(**split) -> pd.DataFrame:
    """The min and max of every numeric German credit feature over the training split of
    ``split`` (``folds``, ``fold``; seed 0 as the runs), read from the data."""
    cfg = yaml.safe_load((CONF / "german_credit.yaml").read_text())
    cfg.update(
        path=str(DATA / "german_credit" / "german.data"),
        values=str(DATA / "german_credit" / "values_maps.json"),
        **split,
    )
    train = DATASETS.build("german_credit", cfg, 0)
    numeric = [n for n, kind in cfg["schema"]["features"].items() if kind == "integer"]
    return train.frame(train.x_train)[numeric].agg(["min", "max"])


def assert_actionable(path: Path, **split) -> pd.DataFrame:
    """Every counterfactual row keeps sex and nationality, never lowers age, and has every
    numeric feature whole and inside the training range of ``split`` (or, for age, which may
    not decrease, at the factual's own age above it)."""
    frame = pd.read_csv(path)
    found = frame[frame["found"]]
    assert len(found) > 0
    for immutable in ("status_sex", "foreign_worker"):
        assert (found[f"cf_{immutable}"] == found[immutable]).all(), immutable
    assert (found["cf_age"] >= found["age"]).all()
    for name, (low, high) in training_range(**split).items():
        value = found[f"cf_{name}"]
        kept_above = (name == "age") & (value == found[name]) & (found[name] > high)
        assert (value.between(low, high) | kept_above).all(), (name, low, high)
        assert (value == value.round()).all(), name
    return frame


@needs_credit
def test_credit_table_over_folds_with_every_method(cli, tmp_path):
    methods = [f"methods.dicoflex.{o}" for o in TINY_DICOFLEX]
    methods += ["methods.ppcef.max_steps=100", "methods.wachter.max_steps=100"]
    assert cli("run", "experiment=credit_table", "data.folds=2", *TINY, *methods,
               "hydra.run.dir=run") == 0  # fmt: skip
    run = tmp_path / "run"
    table = pd.read_csv(run / "table.csv")
    assert list(table["method"]) == ["ppcef", "dicoflex", "wachter"]
    assert (table["runs"] == 2).all() and (table["validity_n"] == 2).all()
    assert table["validity_mean"].between(0, 1).all()
    assert "sparsity ↓" in (run / "table.md").read_text()
    assert "\\begin{tabular}" in (run / "table.tex").read_text()
    metrics = pd.read_csv(run / "folds.csv")
    assert sorted(set(metrics["fold"])) == [0, 1]
    assert (metrics["actionability"] == 1).all()
    for fold in (0, 1):
        frame = assert_actionable(run / f"fold{fold}" / "counterfactuals.csv", folds=2, fold=fold)
        assert set(frame["method"]) == {"ppcef", "dicoflex", "wachter"}
        assert frame["status"].str.contains("DM|account").all()  # category names, not codes
    assert cli("report", "run") == 0
    assert (pd.read_csv(run / "report.csv")["runs"] == 2).all()  # each fold once


@needs_credit
def test_dicoflex_mask_and_p_are_chosen_at_inference(cli, capsys, tmp_path):
    options = [f"method.{o}" for o in TINY_DICOFLEX]
    args = ["data=german_credit", "method=dicoflex", *TINY, *options]
    assert cli("explain", *args, "hydra.run.dir=a") == 0
    capsys.readouterr()
    mask = "method.mask=[status_sex,foreign_worker,age,duration]"
    assert cli("run", *args, "method.p=2", mask, "hydra.run.dir=run") == 0
    assert "Loaded method_model 'dicoflex'" in capsys.readouterr().err  # no retraining for a mask
    frame = assert_actionable(tmp_path / "run" / "counterfactuals.csv")
    found = frame[frame["found"]]
    assert (found["cf_age"] == found["age"]).all()
    assert (found["cf_duration"] == found["duration"]).all()
    assert frame.groupby("factual")["rank"].max().max() > 0  # several per factual


def write_csv(tmp_path: Path, rows: int = 80) -> list[str]:
    """A user's table and its schema; returns the overrides that select them."""
    index = pd.RangeIndex(rows)
    pd.DataFrame({
        "income": 1000.0 + 10 * index,
        "years": index % 40 + 20,
        "city": ["Oslo", "Rome"] * (rows // 2),
        "approved": ["yes" if i >= rows // 2 else "no" for i in index],
    }).to_csv(tmp_path / "table.csv", index=False)  # fmt: skip
    schema = {
        "features": {"income": "continuous", "years": "integer", "city": "categorical"},
        "immutable": ["city"],
        "monotone": {"years": "increasing"},
        "ranges": {"income": [1200, None], "years": [None, 50]},
        "target": "approved",
        "classes": ["no", "yes"],
        "positive": "yes",
    }
    (tmp_path / "schema.yaml").write_text(yaml.safe_dump(schema))
    return ["data=csv", "data.path=table.csv", "data.schema=schema.yaml"]


def test_a_users_csv_runs_with_its_schema(cli, tmp_path):
    data = write_csv(tmp_path)
    # one factual never turns (at any step budget): the other seven are valid within 50 steps
    search = ["classifier.train.epochs=300", "method.max_steps=200"]
    assert cli("run", *data, *TINY, *search, "hydra.run.dir=run") == 0
    frame = pd.read_csv(tmp_path / "run" / "counterfactuals.csv")
    found = frame[frame["found"]]
    assert frame["valid"].mean() > 0.5
    assert (found["cf_city"] == found["city"]).all() and (
        found["cf_years"] >= found["years"]
    ).all()
    # The schema's ranges: income from 1200 (up to the training max, ≤ 1790), years at most
    # 50 unless the factual is older already (years may only increase).
    assert found["cf_income"].between(1200 - 1e-3, 1790 + 1e-3).all()
    assert (found["cf_years"] <= found["years"].clip(lower=50)).all()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("data.path=nowhere.csv", "nowhere.csv does not exist"),
        ("data.schema=nothing.yaml", "schema file nothing.yaml does not exist"),
    ],
)
def test_bad_input_exits_with_code_2_and_one_line(cli, capsys, tmp_path, change, message):
    assert cli("run", *write_csv(tmp_path), *TINY, change) == 2
    stderr = capsys.readouterr().err
    errors = [line for line in stderr.splitlines() if "ERROR" in line]
    assert len(errors) == 1 and message in errors[0]
    assert "Traceback" not in stderr


@pytest.mark.slow
@needs_credit
@pytest.mark.parametrize("method", ["ppcef", "dicoflex", "wachter"])
def test_german_credit_at_full_size(flowcf, tmp_path, method):
    flowcf("run", "data=german_credit", f"method={method}", "progress=false", "threads=1",
           "hydra.run.dir=run")  # fmt: skip
    assert_actionable(tmp_path / "run" / "counterfactuals.csv")
    metrics = pd.read_csv(tmp_path / "run" / "metrics.csv").iloc[0]
    assert metrics["actionability"] == 1
    if method != "wachter":
        assert metrics["validity"] >= 0.95
    if method == "dicoflex":
        assert metrics["distinct_valid"] >= 5
