r"""Split, standardised vector data sets and the dataset registry.

Every dataset factory registered in :data:`DATASETS` has the signature
``load(cfg: Mapping, seed: int) -> Dataset`` where ``cfg`` is the data config (``conf/data``).

Example:
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

from dataclasses import dataclass

import numpy as np
import torch
from sklearn.model_selection import train_test_split
from torch import Tensor

from flowcf.errors import UserError
from flowcf.registry import Registry

__all__ = ["DATASETS", "SCALINGS", "Dataset", "split_and_scale"]

DATASETS = Registry("dataset")
"""Dataset factories ``load(cfg: Mapping, seed: int) -> Dataset``, by name."""

SCALINGS = ("standard", "minmax")
"""Valid values of ``data.scaling``."""


@dataclass
class Dataset:
    r"""A labelled vector data set, split into train / validation / test and scaled.

    Features are float32 tensors of shape :math:`(N, D)` in the scaled space, labels are int64
    tensors of shape :math:`(N,)` with values in :math:`\{0, \dots, C - 1\}`. The scaler is fitted
    on the training split only; raw features are ``x * scale + shift``.

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
    """

    x_train: Tensor
    y_train: Tensor
    x_val: Tensor
    y_val: Tensor
    x_test: Tensor
    y_test: Tensor
    num_classes: int
    feature_names: list[str]
    name: str
    shift: Tensor
    scale: Tensor

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
) -> Dataset:
    r"""Splits a data set into stratified train / validation / test sets and scales it.

    The scaler is fitted on the training split only. ``"standard"`` gives zero mean and unit
    (population) standard deviation per feature, ``"minmax"`` maps each training feature to
    :math:`[0, 1]`. A constant feature keeps scale 1.

    Arguments:
        x: Features, shape :math:`(N, D)`.
        y: Integer labels in :math:`\{0, \dots, C - 1\}`, every class present, shape :math:`(N,)`.
        name: The dataset name.
        feature_names: The :math:`D` feature names.
        seed: The seed of the split.
        val: The validation fraction of the whole data set.
        test: The test fraction of the whole data set.
        scaling: ``"standard"`` or ``"minmax"``.

    Returns:
        The split, scaled data set.
    """
    if scaling not in SCALINGS:
        raise UserError(f"unknown scaling '{scaling}'; choose one of: {', '.join(SCALINGS)}")
    if val <= 0 or test <= 0 or val + test >= 1:
        raise UserError(f"need 0 < val, 0 < test and val + test < 1, got val={val}, test={test}")

    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.int64)
    num_classes = int(y.max()) + 1
    if not np.array_equal(np.unique(y), np.arange(num_classes)):
        raise UserError(f"dataset '{name}': labels must be 0..C-1 with every class present")
    if len(feature_names) != x.shape[1]:
        raise UserError(
            f"dataset '{name}': {len(feature_names)} feature names for {x.shape[1]} features"
        )

    try:
        x_rest, x_test, y_rest, y_test = train_test_split(
            x, y, test_size=test, stratify=y, random_state=seed
        )
        x_train, x_val, y_train, y_val = train_test_split(
            x_rest, y_rest, test_size=val / (1 - test), stratify=y_rest, random_state=seed
        )
    except ValueError as e:  # too few samples of some class for a stratified split
        raise UserError(f"dataset '{name}' cannot be split: {e}") from e

    if scaling == "standard":
        shift, scale = x_train.mean(axis=0), x_train.std(axis=0)
    else:
        shift, scale = x_train.min(axis=0), np.ptp(x_train, axis=0)
    scale = np.where(scale > 0, scale, 1.0)

    def features(a: np.ndarray) -> Tensor:
        return torch.as_tensor((a - shift) / scale, dtype=torch.float32)

    def labels(a: np.ndarray) -> Tensor:
        return torch.as_tensor(a, dtype=torch.int64)

    return Dataset(
        x_train=features(x_train),
        y_train=labels(y_train),
        x_val=features(x_val),
        y_val=labels(y_val),
        x_test=features(x_test),
        y_test=labels(y_test),
        num_classes=num_classes,
        feature_names=list(feature_names),
        name=name,
        shift=torch.as_tensor(shift, dtype=torch.float32),
        scale=torch.as_tensor(scale, dtype=torch.float32),
    )
