"""scikit-learn's bundled multiclass tables, available offline: digits and wine.

Each feature's domain is its training range (counterfactuals stay inside it); they have no
schema, so every feature counts as continuous and mutable.

References:
    | Optical Recognition of Handwritten Digits; Wine. UCI Machine Learning Repository
    | https://scikit-learn.org/stable/datasets/toy_dataset.html
"""

from collections.abc import Mapping

from sklearn.datasets import load_digits, load_wine

from flowcf.data.base import DATASETS, Dataset, split_and_scale

__all__ = ["LOADERS"]

LOADERS = {"digits": load_digits, "wine": load_wine}
"""Dataset name → scikit-learn loader returning a ``Bunch`` with ``data`` and ``target``."""


def _register(name: str) -> None:
    @DATASETS.register(name)
    def load(cfg: Mapping, seed: int) -> Dataset:
        bunch = LOADERS[name]()
        return split_and_scale(
            bunch.data, bunch.target, name=name, feature_names=list(bunch.feature_names),
            seed=seed, val=cfg["val"], test=cfg["test"], scaling=cfg["scaling"],
            folds=cfg.get("folds"), fold=cfg.get("fold", 0), bounded=True,
        )  # fmt: skip


for _name in LOADERS:
    _register(_name)
