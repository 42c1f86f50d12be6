r"""Split, standardised vector data sets and the dataset registry.

Every dataset factory registered in :data:`DATASETS` has the signature
``load(cfg: Mapping, seed: int) -> Dataset`` where ``cfg`` is the data config (``conf/data``).

Examples:
    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(size=(100, 2))
    >>> y = np.arange(100) % 2
    >>> ds = split_and_scale(
    ...     x, y, name="demo", feature_names=["a", "b"], seed=0, val=0.2, test=0.2,
    ...     scaling="standard",
    ... )
    >>> ds.dim, ds.num_classes, len(ds.x_train), len(ds.x_val), len(ds.x_test)
    (2, 2, 60, 20, 20)
"""

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.model_selection import StratifiedKFold, train_test_split
from torch import Tensor

from flowcf.data.constraints import Constraints
from flowcf.data.streamed import StreamedImages
from flowcf.errors import UserError
from flowcf.registry import Registry
from flowcf.rules import one_of

__all__ = [
    "DATASETS",
    "SCALING",
    "SCALINGS",
    "Attributes",
    "Dataset",
    "fit_scaler",
    "split_and_scale",
    "split_indices",
]

DATASETS = Registry("dataset")
"""Dataset factories ``load(cfg: Mapping, seed: int) -> Dataset``, by name."""

SCALINGS = ("standard", "minmax")
"""Valid values of ``data.scaling``."""
SCALING = one_of(*SCALINGS)


@dataclass
class Attributes:
    r"""Binary attributes of every point of multi-label data (CelebA): the flow's context.

    The labels ``y`` of the data set are the first attribute; the others describe the points
    further, so a PluGeN flow can tie one base dimension to each (:math:`\pm 1`).

    Arguments:
        names: The :math:`K` attribute names, the labelled one first.
        train: The training split's attributes in :math:`\{0, 1\}`, float32 :math:`(N, K)`.
        val: The validation split's, the same way.
        test: The test split's, the same way.
    """

    names: list[str]
    train: Tensor
    val: Tensor
    test: Tensor

    def prior(self, num_classes: int = 2) -> Tensor:
        """P(a_k = 1 | y = c) on the training split, (C, K), with add-one smoothing for the
        attributes after the first (the first is the label itself: exactly 0 or 1)."""
        y = self.train[:, 0].long()
        rows = []
        for c in range(num_classes):
            a = self.train[y == c]
            rows.append(
                torch.cat([torch.full((1,), float(c)), (a[:, 1:].sum(0) + 1) / (len(a) + 2)])
            )
        return torch.stack(rows)


@dataclass
class Dataset:
    r"""A labelled vector data set, split into train / validation / test and scaled.

    Features are float32 tensors of shape :math:`(N, D)` in the scaled space, labels are int64
    tensors of shape :math:`(N,)` with values in :math:`\{0, \dots, C - 1\}`. The scaler is fitted
    on the training split only; raw features are ``x * scale + shift``. Images too many to hold
    in memory (CelebA) are :class:`~flowcf.data.streamed.StreamedImages`, which index like such
    tensors and read from disk only the rows indexed.

    Arguments:
        x_train: Training features.
        y_train: Training labels.
        x_val: Validation features.
        y_val: Validation labels.
        x_test: Test features.
        y_test: Test labels.
        num_classes: The number of classes :math:`C`.
        feature_names: The :math:`D` feature names.
        name: The dataset name.
        shift: The scaler's shift, shape :math:`(D,)`.
        scale: The scaler's scale, shape :math:`(D,)`.
        constraints: The features' domain, what a counterfactual may be (tables: from the
            schema; digits and wine: the training range), or ``None``: anything (toy data live
            on the plane; images have ``bounds``).
        bounds: The range of valid input values (``(0, 1)`` for image pixels), or ``None``.
        attributes: Binary attributes of every point (multi-label data), or ``None``.
        class_names: A name per class (``method.target`` may name one), or ``None``.
        files: The files the loader read, by the data config key that located them (``path``,
            ``root``...); artifacts are keyed by their contents in place of that key's value.
            Empty when the config alone defines the data (toys, scikit-learn's tables).
    """

    x_train: Tensor | StreamedImages
    y_train: Tensor
    x_val: Tensor | StreamedImages
    y_val: Tensor
    x_test: Tensor | StreamedImages
    y_test: Tensor
    num_classes: int
    feature_names: list[str]
    name: str
    shift: Tensor
    scale: Tensor
    constraints: Constraints | None = None
    bounds: tuple[float, float] | None = None
    attributes: Attributes | None = None
    class_names: list[str] | None = None
    files: dict[str, list[Path]] = field(default_factory=dict)

    @property
    def dim(self) -> int:
        """The number of features :math:`D`."""
        return self.x_train.shape[-1]

    @property
    def shape(self) -> tuple[int, ...]:
        """The shape of one input, without the batch: ``(D,)`` for vectors."""
        return tuple(self.x_train.shape[1:])

    def to_raw(self, x: Tensor) -> Tensor:
        """Undoes the scaling, e.g. for user-facing CSV output.

        Arguments:
            x: Scaled features, shape :math:`(*, D)`.

        Returns:
            The features in their original units, shape :math:`(*, D)`.
        """
        return x * self.scale.to(x) + self.shift.to(x)

    def class_index(self, target: str | int) -> str | int:
        """``method.target`` with a class name (e.g. ``Smiling=0``; ``Smiling:0`` is the same
        and needs no quotes on Hydra's command line) replaced by the class index."""
        if not isinstance(target, str) or target == "next" or not self.class_names:
            return target
        name = target.replace(":", "=")
        if name not in self.class_names:
            raise UserError(
                f"method.target '{target}' names no class of {self.name}; choose one of: next, "
                f"{', '.join(self.class_names)} (or a class index)"
            )
        return self.class_names.index(name)

    def frame(self, x: Tensor) -> pd.DataFrame:
        """Features in their original units, one column per feature, for CSV output.

        Arguments:
            x: Scaled features, shape :math:`(N, D)`.
        """
        return pd.DataFrame(self.to_raw(x.cpu()).numpy(), columns=self.feature_names)


def split_indices(
    y: np.ndarray, *, seed: int, val: float, test: float, folds: int | None = None, fold: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stratified train / validation / test row indices.

    Without ``folds`` the test set is the fraction ``test`` of the rows; with ``folds=K`` it is
    fold ``fold`` of a shuffled stratified K-fold split (so K runs cover every row once). The
    validation set is the fraction ``val`` of the whole data set, taken from the rest.

    Arguments:
        y: Labels, shape :math:`(N,)`.
        seed: The seed of the split.
        val: The validation fraction of the whole data set.
        test: The test fraction (ignored with ``folds``).
        folds: The number of cross-validation folds :math:`K \\geq 2`, or ``None``.
        fold: Which fold is the test set, in :math:`0, \\dots, K - 1`.
    """
    if folds is not None:
        test = 1 / folds
    rows = np.arange(len(y))
    try:
        if folds is None:
            rest, test_rows = train_test_split(rows, test_size=test, stratify=y, random_state=seed)
        else:
            splits = StratifiedKFold(folds, shuffle=True, random_state=seed).split(rows, y)
            rest, test_rows = list(splits)[fold]
        train_rows, val_rows = train_test_split(
            rest, test_size=val / (1 - test), stratify=y[rest], random_state=seed
        )
    except ValueError as e:  # too few samples of some class for a stratified split
        raise UserError(f"the data cannot be split: {e}") from e
    return train_rows, val_rows, test_rows


def fit_scaler(x_train: np.ndarray, scaling: str) -> tuple[np.ndarray, np.ndarray]:
    """The ``(shift, scale)`` that map training features to zero mean and unit (population) std
    (``"standard"``) or to :math:`[0, 1]` (``"minmax"``); a constant feature keeps scale 1."""
    SCALING.check("data.scaling", scaling)
    if scaling == "standard":
        shift, scale = x_train.mean(axis=0), x_train.std(axis=0)
    else:
        shift, scale = x_train.min(axis=0), np.ptp(x_train, axis=0)
    return shift, np.where(scale > 0, scale, 1.0)


def split_and_scale(
    x: np.ndarray,
    y: np.ndarray,
    *,
    name: str,
    feature_names: list[str],
    seed: int,
    val: float,
    test: float,
    scaling: str,
    folds: int | None = None,
    fold: int = 0,
    bounded: bool = False,
) -> Dataset:
    r"""Splits a data set into stratified train / validation / test sets and scales it.

    The split is :func:`split_indices`; the scaler (:func:`fit_scaler`) is fitted on the
    training split only. With ``bounded`` each feature's domain is its training range
    (:meth:`~flowcf.data.constraints.Constraints.box`): counterfactuals stay inside it.

    Arguments:
        x: Features, shape :math:`(N, D)`.
        y: Integer labels in :math:`\{0, \dots, C - 1\}`, every class present, shape :math:`(N,)`.
        name: The dataset name.
        feature_names: The :math:`D` feature names.
        seed: The seed of the split.
        val: The validation fraction of the whole data set.
        test: The test fraction of the whole data set.
        scaling: ``"standard"`` or ``"minmax"``.
        folds: The number of cross-validation folds, or ``None`` for one split.
        fold: Which fold is the test set.
        bounded: Whether counterfactuals must stay in the training range.

    Returns:
        The split, scaled data set.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.int64)
    num_classes = int(y.max()) + 1
    if not np.array_equal(np.unique(y), np.arange(num_classes)):
        raise UserError(f"dataset '{name}': labels must be 0..C-1 with every class present")
    if len(feature_names) != x.shape[1]:
        raise UserError(
            f"dataset '{name}': {len(feature_names)} feature names for {x.shape[1]} features"
        )
    rows = split_indices(y, seed=seed, val=val, test=test, folds=folds, fold=fold)
    shift, scale = fit_scaler(x[rows[0]], scaling)
    tensors = [
        (
            torch.as_tensor((x[r] - shift) / scale, dtype=torch.float32),
            torch.as_tensor(y[r], dtype=torch.int64),
        )
        for r in rows
    ]
    shift, scale = (torch.as_tensor(v, dtype=torch.float32) for v in (shift, scale))
    x_train = tensors[0][0]
    box = (
        Constraints.box(feature_names, x_train.amin(0), x_train.amax(0), shift, scale)
        if bounded else None
    )  # fmt: skip
    return Dataset(
        *tensors[0],
        *tensors[1],
        *tensors[2],
        num_classes=num_classes,
        feature_names=list(feature_names),
        name=name,
        shift=shift,
        scale=scale,
        constraints=box,
    )
