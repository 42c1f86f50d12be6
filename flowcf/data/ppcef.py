"""The PPCEF authors' benchmark tables, read as their code reads them (ofurman/counterfactuals,
tag v0.1.ppcef): law school admissions and their three Gaussian blobs.

``law``: features lsat, gpa, zfygpa and target pass_bar from ``data.path``; rows missing a
feature are dropped, then class 1 is downsampled to class 0's count
(``DataFrame.sample(random_state=42)``), class 0's rows first. ``blobs_csv``: the authors'
``blobs.csv``, features first and the label last; like their ``pd.read_csv`` call, the file's
first line is taken as its header, so that row is not a data point. Both split and scale with
:func:`~flowcf.data.base.split_and_scale` (``data.folds``: stratified K-fold, the scaler fit on
each training fold).

References:
    | Probabilistically Plausible Counterfactual Explanations with Normalizing Flows
    | (Wielopolski, Furman, Stefanowski, Zięba, ECAI 2024) https://arxiv.org/abs/2405.17640

    | LSAC National Longitudinal Bar Passage Study (Wightman, 1998)
"""

from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from flowcf.data.base import DATASETS, Dataset, split_and_scale
from flowcf.errors import UserError

__all__ = ["LAW_FEATURES", "LAW_TARGET", "balanced_law", "read_csv"]

LAW_FEATURES = ["lsat", "gpa", "zfygpa"]
LAW_TARGET = "pass_bar"


def read_csv(path: str, columns: list[str] | None = None) -> pd.DataFrame:
    """The CSV file at ``path`` (the ``data.path`` key), with ``columns`` if given."""
    if not Path(path).is_file():
        raise UserError(f"data.path: {path} does not exist; put the CSV there or set data.path")
    frame = pd.read_csv(path)
    missing = sorted(set(columns or []) - set(frame.columns))
    if missing:
        raise UserError(f"data.path: {path} has no column {', '.join(missing)}")
    return frame


def balanced_law(frame: pd.DataFrame) -> pd.DataFrame:
    """The authors' law rows: complete features, class 1 downsampled to class 0's count."""
    frame = frame.dropna(subset=LAW_FEATURES)
    fail = frame[frame[LAW_TARGET] == 0]
    sample = frame[frame[LAW_TARGET] == 1].sample(len(fail), random_state=42)
    return pd.concat([fail, sample])


def _split(cfg: Mapping, seed: int, x, y, features: list[str], files: dict) -> Dataset:
    data = split_and_scale(
        x, y, name=cfg["name"], feature_names=features, seed=seed, val=cfg["val"],
        test=cfg["test"], scaling=cfg["scaling"], folds=cfg.get("folds"), fold=cfg.get("fold", 0),
    )  # fmt: skip
    data.files = files
    return data


@DATASETS.register("law")
def load_law(cfg: Mapping, seed: int) -> Dataset:
    """The authors' law data from ``cfg["path"]``."""
    path = str(cfg["path"])
    frame = balanced_law(read_csv(path, [*LAW_FEATURES, LAW_TARGET]))
    x, y = frame[LAW_FEATURES].to_numpy(), frame[LAW_TARGET].to_numpy().astype(int)
    return _split(cfg, seed, x, y, LAW_FEATURES, {"path": [Path(path)]})


@DATASETS.register("blobs_csv")
def load_blobs(cfg: Mapping, seed: int) -> Dataset:
    """The authors' blobs from ``cfg["path"]``: features, then the label."""
    path = str(cfg["path"])
    frame = read_csv(path)
    x, y = frame.iloc[:, :-1].to_numpy(), frame.iloc[:, -1].to_numpy().astype(int)
    features = [f"x{i + 1}" for i in range(x.shape[1])]
    return _split(cfg, seed, x, y, features, {"path": [Path(path)]})
