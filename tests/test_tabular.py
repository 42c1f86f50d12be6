"""Tables with a schema: reading and checking CSV files, encoding, constraints, the loaders."""

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from flowcf.data import DATASETS
from flowcf.data.schema import Schema
from flowcf.errors import UserError

CONF = Path(__file__).parents[1] / "conf" / "data"
DATA = Path(os.environ.get("FLOWCF_DATA", Path(__file__).parents[2] / "shared" / "data"))
SCHEMA = {
    "features": {"income": "continuous", "age": "integer", "grade": "ordinal",
                 "city": "categorical", "sex": "categorical"},
    "orders": {"grade": ["low", "mid", "high"]},
    "categories": {"city": ["Oslo", "Rome", "Lyon"]},
    "immutable": ["sex"],
    "monotone": {"age": "increasing"},
    "target": "label",
    "classes": ["no", "yes"],
    "positive": "yes",
}  # fmt: skip


def table(rows: int = 60, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "income": rng.normal(3000, 500, rows).round(2),
        "age": rng.integers(18, 80, rows),
        "grade": rng.choice(["low", "mid", "high"], rows),
        "city": rng.choice(["Oslo", "Rome", "Lyon"], rows),
        "sex": rng.choice(["f", "m"], rows),
        "label": np.where(np.arange(rows) % 3 == 0, "yes", "no"),
    })  # fmt: skip


def config(path: Path, **overrides) -> dict:
    cfg = yaml.safe_load((CONF / "csv.yaml").read_text())
    cfg.update({"path": str(path), "schema": SCHEMA, **overrides})
    return cfg


def load(frame: pd.DataFrame, tmp_path: Path, **overrides):
    path = tmp_path / "table.csv"
    frame.to_csv(path, index=False)
    return DATASETS.build("csv", config(path, **overrides), 0)


def test_a_csv_is_encoded_and_decoded_to_its_own_units(tmp_path):
    frame = table()
    ds = load(frame, tmp_path)
    assert ds.dim == 3 + 3 + 2 and ds.num_classes == 2
    assert ds.feature_names[:3] == ["income", "age", "grade"]
    x = torch.cat([ds.x_train, ds.x_val, ds.x_test])
    decoded = ds.frame(x).sort_values(["income", "age"]).reset_index(drop=True)
    original = frame.drop(columns="label").sort_values(["income", "age"]).reset_index(drop=True)
    assert decoded[["age", "grade", "city", "sex"]].equals(
        original[["age", "grade", "city", "sex"]]
    )
    assert np.allclose(decoded["income"], original["income"], atol=1e-2)
    positive = frame["label"] == "yes"
    assert int(torch.cat([ds.y_train, ds.y_val, ds.y_test]).sum()) == positive.sum()


def test_constraints_keep_immutables_monotones_and_valid_categories(tmp_path):
    ds = load(table(), tmp_path)
    constraints, x = ds.constraints, ds.x_test
    moved = constraints.finalize(x, x + torch.randn_like(x))
    before, after = ds.frame(x), ds.frame(moved)
    assert (after["sex"] == before["sex"]).all()
    assert (after["age"] >= before["age"]).all()
    one_hot = moved[:, 3:]
    assert set(one_hot.unique().tolist()) <= {0.0, 1.0}
    assert (one_hot[:, :3].sum(dim=1) == 1).all() and (one_hot[:, 3:].sum(dim=1) == 1).all()
    assert constraints.changed(x, moved)[:, constraints.names.index("sex")].sum() == 0


def test_folds_cover_every_row_once(tmp_path):
    frame = table(100)
    tests = [load(frame, tmp_path, folds=5, fold=i).x_test for i in range(5)]
    assert sum(len(t) for t in tests) == 100
    assert len(torch.unique(torch.cat(tests), dim=0)) == 100


BAD_INPUTS = {
    "missing file": (lambda f: None, "does not exist"),
    "missing column": (lambda f: f.drop(columns="city"), "column 'city' is missing"),
    "extra column": (lambda f: f.assign(zip="x"), "column 'zip' is not in the schema"),
    "not a number": (lambda f: f.assign(age=f["age"].astype(str).where(f.index != 4, "old")),
                     "column 'age', row 6: 'old' is not a number"),
    "NaN": (lambda f: f.mask((f.index == 7)[:, None] & (f.columns == "income")),
            "column 'income', row 9: missing value"),
    "unseen category": (lambda f: f.assign(city=["Oslo"] * 59 + ["Paris"]),
                        "column 'city', row 61: unknown category 'Paris'"),
    "more classes": (lambda f: f.assign(label=["maybe", *f["label"][1:]]),
                     "column 'label', row 2: class 'maybe' is not one of"),
}  # fmt: skip


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_input_is_a_one_line_error_naming_file_column_and_row(tmp_path, case):
    change, message = BAD_INPUTS[case]
    frame = change(table())
    path = tmp_path / "table.csv"
    if frame is not None:
        frame.to_csv(path, index=False)
    with pytest.raises(UserError, match=message) as error:
        DATASETS.build("csv", config(path), 0)
    assert str(path) in str(error.value) and "\n" not in str(error.value)


def test_bad_schema_is_a_user_error():
    for broken, message in [
        ({"features": {"a": "text"}}, "unknown kind 'text'"),
        ({"immutable": ["nope"]}, "'nope' is not one of the features"),
        ({"monotone": {"age": "up"}}, "increasing or decreasing"),
        ({"positive": "maybe"}, "positive class"),
    ]:
        with pytest.raises(UserError, match=message):
            Schema.load({**SCHEMA, **broken})


@pytest.mark.skipif(not (DATA / "german_credit").is_dir(), reason=f"no German credit in {DATA}")
def test_german_credit_reads_the_uci_file():
    cfg = yaml.safe_load((CONF / "german_credit.yaml").read_text())
    cfg.update(path=str(DATA / "german_credit" / "german.data"),
               values=str(DATA / "german_credit" / "values_maps.json"))  # fmt: skip
    ds = DATASETS.build("german_credit", cfg, 0)
    y = torch.cat([ds.y_train, ds.y_val, ds.y_test])
    assert len(y) == 1000 and int(y.sum()) == 700  # label 1: good credit
    assert ds.dim == 7 + sum(len(g) for g in ds.constraints.groups)
    immutable = ds.constraints.immutable_features
    assert [n for n, i in zip(ds.constraints.names, immutable, strict=True) if i] == [
        "status_sex", "foreign_worker"
    ]  # fmt: skip
    assert "female : divorced/separated/married" in set(ds.frame(ds.x_train)["status_sex"])


@pytest.mark.parametrize(("name", "classes", "dim"), [("digits", 10, 64), ("wine", 3, 13)])
def test_bundled_multiclass_tables(name, classes, dim):
    cfg = yaml.safe_load((CONF / f"{name}.yaml").read_text())
    ds = DATASETS.build(name, cfg, 0)
    assert ds.num_classes == classes and ds.dim == dim
    assert ds.x_train.min() >= 0 and ds.x_train.max() <= 1


def test_the_domain_is_the_training_range_and_finalize_stays_inside_it(tmp_path):
    ds = load(table(), tmp_path)
    constraints, x = ds.constraints, ds.x_test
    train = ds.frame(ds.x_train)
    torch.manual_seed(0)
    for far in (0.5, 5.0, 50.0):
        moved = constraints.finalize(x, x + far * torch.randn_like(x))
        after, before = ds.frame(moved), ds.frame(x)
        for name in ("income", "age"):
            low, high = train[name].min(), train[name].max()
            beyond = (after[name] == before[name]) & (before[name] > high)  # age can't go back
            inside = after[name].between(low - 1e-3, high + 1e-3)
            assert (inside | (beyond if name == "age" else False)).all(), (far, name)
        assert (after["age"] >= before["age"]).all() and (after["sex"] == before["sex"]).all()
        assert after["grade"].isin(["low", "mid", "high"]).all()
        raw = ds.to_raw(moved)
        assert torch.equal(raw[:, 1], raw[:, 1].round())  # age whole, in its own units
        assert constraints.satisfied(x, moved).all()
        assert torch.equal(constraints.finalize(x, moved), moved)  # already in the domain


def test_a_factual_beyond_a_bound_it_may_not_move_back_from_keeps_its_value():
    from flowcf.data.constraints import Constraints

    c = Constraints(
        feature=torch.arange(3), names=["age", "debt", "free"],
        direction=torch.tensor([1.0, -1.0, 0.0]), mutable=torch.ones(3),
        integer=torch.ones(3), shift=torch.zeros(3), scale=torch.ones(3),
        low=torch.tensor([18.0, 0.0, 0.0]), high=torch.tensor([70.0, 10.0, 5.0]), groups=[],
    )  # fmt: skip
    x = torch.tensor([[80.0, -3.0, 9.0], [30.0, 4.0, 2.0]])
    proposed = torch.tensor([[60.0, 20.0, 7.4], [95.0, -5.0, 3.6]])
    # Age 80 above 70 may not decrease: stays; debt −3 below 0 may not increase: stays; free 9
    # goes into [0, 5]. Row two: age up to 70 at most, debt down to 0 at least, 3.6 rounds to 4.
    expected = torch.tensor([[80.0, -3.0, 5.0], [70.0, 0.0, 4.0]])
    assert torch.equal(c.finalize(x, proposed), expected)
    assert torch.equal(c.project(x, c.project(x, proposed)), c.project(x, proposed))


def test_schema_ranges_widen_narrow_and_round_inward(tmp_path):
    ranges = {"income": [0, None], "age": [20.5, 60.7], "grade": [None, "mid"]}
    ds = load(table(), tmp_path, schema={**SCHEMA, "ranges": ranges})
    c, train = ds.constraints, ds.frame(ds.x_train)
    low, high = ds.to_raw(c.low), ds.to_raw(c.high)
    assert low[0] == pytest.approx(0, abs=1e-3)
    assert high[0] == pytest.approx(train["income"].max(), abs=1e-2)  # null: the training max
    assert low[1] == pytest.approx(21) and high[1] == pytest.approx(60)  # whole, inward
    assert low[2] == pytest.approx(0) and high[2] == pytest.approx(1)  # ranks: low .. mid
    no_bound = {"income": yaml.safe_load("[null, .inf]")}
    unbounded = load(table(), tmp_path, schema={**SCHEMA, "ranges": no_bound})
    assert unbounded.constraints.high[0] == float("inf")


@pytest.mark.parametrize(
    ("ranges", "message"),
    [
        ({"nope": [0, 1]}, "'nope' is not one of the features"),
        ({"city": [0, 1]}, "ranges.city: a categorical feature has no range"),
        ({"age": [30, 20]}, r"ranges.age has low > high: \[30, 20\]"),
        ({"age": ["young", 20]}, r"ranges.age must be \[low, high\] with numbers"),
        ({"age": [True, 20]}, r"ranges.age must be \[low, high\] with numbers"),
        ({"age": 20}, r"ranges.age must be \[low, high\]"),
        ({"age": [1, 2, 3]}, r"ranges.age must be \[low, high\]"),
        ({"grade": ["low", "top"]}, r"ranges.grade must be \[low, high\] with categories"),
        (["age"], "ranges must map features to"),
    ],
)
def test_bad_ranges_are_one_line_errors_naming_schema_and_feature(ranges, message):
    with pytest.raises(UserError, match=message) as error:
        Schema.load({**SCHEMA, "ranges": ranges})
    assert str(error.value).startswith("schema: ") and "\n" not in str(error.value)


def test_a_range_with_no_whole_number_is_a_user_error(tmp_path):
    for ranges in ({"age": [30.2, 30.8]}, {"age": [None, 5]}):
        with pytest.raises(UserError, match=r"ranges\.age leaves no value of 'age'"):
            load(table(), tmp_path, schema={**SCHEMA, "ranges": ranges})
