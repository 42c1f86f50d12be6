"""Outlier scores of counterfactuals against the training data, from scikit-learn (DESIGN §6).

Both are ``score_samples`` of a detector fitted on the training inputs: higher means more
normal. As in the PPCEF authors' evaluation, LOF is a novelty LOF with k = 20 and the isolation
forest has 100 trees.

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

__all__ = ["isolation_forest", "lof"]


def _scores(setting: Setting, detector) -> torch.Tensor:
    """``detector`` fitted on the training inputs (all read into memory, streamed images too),
    scoring the counterfactuals."""
    detector.fit(setting.x_train[:].flatten(1).cpu().numpy())
    x_cf = setting.cfs.x_cf.nan_to_num().flatten(1).cpu().numpy()
    return torch.as_tensor(detector.score_samples(x_cf), device=setting.cfs.x.device)


@metric("lof", higher_is_better=True)
def lof(setting: Setting):
    """Negative local outlier factor (≈ −1 for inliers, lower for outliers)."""
    return _scores(setting, LocalOutlierFactor(n_neighbors=20, novelty=True))


@metric("isolation_forest", higher_is_better=True)
def isolation_forest(setting: Setting):
    """Negative isolation-forest anomaly score (higher: harder to isolate, more normal)."""
    return _scores(setting, IsolationForest(n_estimators=100, random_state=0))
