"""Outlier scores of counterfactuals against the training data, from scikit-learn.

Each detector is fitted on the training inputs: a novelty LOF with k = 20 and an isolation
forest of 100 trees, as in the PPCEF authors' evaluation. Two conventions, each a metric:

- flowcf's ``lof`` and ``isolation_forest``: ``score_samples``, higher is more normal (LOF
  ≈ −1 for inliers), averaged over valid counterfactuals;
- the authors' ``lof_factor`` (``-score_samples``: the local outlier factor itself, ≈ 1 for
  inliers, lower is better) and ``isolation_forest_decision`` (``decision_function``, which is
  ``score_samples`` + 0.5 with the default contamination; forest seed 42 as theirs), averaged
  over every returned counterfactual.

References:
    | LOF: Identifying Density-Based Local Outliers (Breunig et al., 2000)
    | https://doi.org/10.1145/342009.335388

    | Isolation Forest (Liu, Ting, Zhou, 2008) https://doi.org/10.1109/ICDM.2008.17
"""

import torch
from sklearn.ensemble import IsolationForest
from sklearn.neighbors import LocalOutlierFactor

from flowcf.metrics.base import metric
from flowcf.setting import Setting

__all__ = ["isolation_forest", "isolation_forest_decision", "lof", "lof_factor"]


def _scores(setting: Setting, detector, method: str = "score_samples") -> torch.Tensor:
    """``detector`` fitted on the training inputs (all read into memory, streamed images too),
    scoring the counterfactuals with its ``method``."""
    detector.fit(setting.x_train[:].flatten(1).cpu().numpy())
    x_cf = setting.cfs.x_cf.nan_to_num().flatten(1).cpu().numpy()
    return torch.as_tensor(getattr(detector, method)(x_cf), device=setting.cfs.x.device)


def _lof() -> LocalOutlierFactor:
    return LocalOutlierFactor(n_neighbors=20, novelty=True)


@metric("lof", higher_is_better=True)
def lof(setting: Setting):
    """Negative local outlier factor (≈ −1 for inliers, lower for outliers)."""
    return _scores(setting, _lof())


@metric("lof_factor", higher_is_better=False, over="returned")
def lof_factor(setting: Setting):
    """The local outlier factor, the authors' ``-score_samples`` (≈ 1 for inliers)."""
    return -_scores(setting, _lof())


@metric("isolation_forest", higher_is_better=True)
def isolation_forest(setting: Setting):
    """Negative isolation-forest anomaly score (higher: harder to isolate, more normal)."""
    return _scores(setting, IsolationForest(n_estimators=100, random_state=0))


@metric("isolation_forest_decision", higher_is_better=True, over="returned")
def isolation_forest_decision(setting: Setting):
    """The authors' ``decision_function`` (positive for inliers, negative for outliers)."""
    forest = IsolationForest(n_estimators=100, random_state=42)
    return _scores(setting, forest, "decision_function")
