r"""MNIST handwritten digits as :math:`(N, 1, S, S)` images in :math:`[0, 1]`.

The loader reads the four original IDX files (plain or gzip-compressed) from ``cfg["root"]``,
looking in ``<root>/mnist/``, ``<root>/`` and torchvision's ``<root>/MNIST/raw/``, and downloads
them with torchvision only when ``cfg["download"]`` is true. The 28 x 28 digits are resized to
``size`` x ``size`` (default 32, as in PLACE) by bilinear interpolation (no antialiasing,
``align_corners=False``), which keeps pixel values in :math:`[0, 1]`.

Splits: validation (``val`` images, stratified) and training come from the official 60,000
training images, test from the official 10,000 test images. ``train_size`` and ``test_size``
(``None`` = all) draw seeded, stratified subsets of those, e.g. for fast tests. Pixels are not
standardised: ``shift = 0`` and ``scale = 1``, so :meth:`~flowcf.data.base.Dataset.to_raw` is the
identity.

References:
    | Gradient-based learning applied to document recognition (LeCun et al., 1998)
    | https://doi.org/10.1109/5.726791

Examples:
    >>> ds = DATASETS.build(  # doctest: +SKIP
    ...     "mnist", {"root": "data", "size": 32, "val": 100, "train_size": 500,
    ...     "test_size": 200}, seed=0,
    ... )
    >>> ds.shape, ds.num_classes, len(ds.x_train), len(ds.x_val)  # doctest: +SKIP
    ((1, 32, 32), 10, 500, 100)
"""

import gzip
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
from sklearn.model_selection import train_test_split
from torch import Tensor
from torch.nn.functional import interpolate

from flowcf.data.base import DATASETS, Dataset
from flowcf.errors import UserError

__all__ = ["FILES", "find_files", "read_idx"]

FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
"""The IDX file names (images, labels) of each official split, without ``.gz``."""

IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
"""IDX type codes and their big-endian NumPy dtypes."""


def read_idx(path: str | Path) -> np.ndarray:
    """Reads an IDX file, gzip-compressed when its name ends in ``.gz``.

    The header is two zero bytes, a type code, the number of dimensions :math:`n`, then
    :math:`n` big-endian 32-bit sizes; the data follow in C order.

    Arguments:
        path: The file.

    Returns:
        The array, with the file's shape and dtype.
    """
    path = Path(path)
    with (gzip.open if path.suffix == ".gz" else open)(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[:2] != b"\0\0" or data[2] not in IDX_TYPES:
        raise UserError(f"{path} is not an IDX file (bad header); replace it with the original")
    ndim = data[3]
    shape = tuple(np.frombuffer(data, ">u4", count=ndim, offset=4).tolist())
    dtype = np.dtype(IDX_TYPES[data[2]])
    offset = 4 + 4 * ndim
    if len(data) - offset != dtype.itemsize * int(np.prod(shape)):
        raise UserError(f"{path} is truncated or corrupt: its size does not match its header")
    return np.frombuffer(data, dtype, offset=offset).reshape(shape)


def find_files(root: str | Path) -> dict[str, Path]:
    """The four MNIST files in the first directory under ``root`` that holds all of them.

    Looks in ``<root>/mnist``, ``<root>`` and ``<root>/MNIST/raw``, each file plain or ``.gz``.

    Returns:
        The path of each file, by its name in :data:`FILES`.
    """
    root = Path(root)
    names = [name for pair in FILES.values() for name in pair]
    folders = [root / "mnist", root, root / "MNIST" / "raw"]
    for folder in folders:
        found = {}
        for name in names:
            candidates = [folder / name, folder / f"{name}.gz"]
            found[name] = next((p for p in candidates if p.is_file()), None)
        if all(found.values()):
            return found
    raise UserError(
        f"MNIST not found: looked in {', '.join(map(str, folders))} for "
        f"{', '.join(names)} (each plain or .gz, from http://yann.lecun.com/exdb/mnist/); "
        "put them there, or set data.root=<dir> or the environment variable FLOWCF_DATA=<dir>, "
        "or pass data.download=true"
    )


def _subset(labels: np.ndarray, size: int | None, seed: int, what: str) -> np.ndarray:
    """Sorted indices of a seeded, stratified subset of ``size`` labels (all if ``None``)."""
    indices = np.arange(len(labels))
    if size is None or size == len(labels):
        return indices
    if not 0 < size < len(labels):
        raise UserError(f"mnist: {what} must be in 1..{len(labels)} or null, got {size}")
    try:
        chosen, _ = train_test_split(indices, train_size=size, stratify=labels, random_state=seed)
    except ValueError as error:  # fewer images than classes
        raise UserError(
            f"mnist: {what}={size} is too small for a stratified subset: {error}"
        ) from None
    return np.sort(chosen)


def _images(pixels: np.ndarray, size: int) -> Tensor:
    """uint8 digits (N, 28, 28) as float32 images (N, 1, size, size) in [0, 1]."""
    x = torch.from_numpy(pixels.astype(np.float32) / 255).unsqueeze(1)
    if x.shape[-1] != size:
        x = interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    return x.contiguous()


@DATASETS.register("mnist")
def load(cfg: Mapping, seed: int) -> Dataset:
    """Loads MNIST as described in the module docstring.

    Arguments:
        cfg: The data config: ``root``, ``download``, ``size``, ``val``, ``train_size`` and
            ``test_size`` (see ``conf/data/mnist.yaml``).
        seed: The seed of the validation split and the subsets.

    Returns:
        The data set, images of shape ``(1, size, size)``.
    """
    root = Path(cfg["root"]).expanduser()
    if cfg.get("download", False):
        from torchvision.datasets import MNIST

        try:
            for train in (True, False):
                MNIST(root, train=train, download=True)
        except (OSError, RuntimeError) as error:
            reason = (str(error).splitlines() or [type(error).__name__])[0]
            raise UserError(
                f"mnist: downloading into {root} failed ({reason}); put the IDX files there "
                "yourself or point data.root at a copy"
            ) from None
    files = find_files(root)
    (x_rest, y_rest), (x_test, y_test) = (
        (read_idx(files[images]), read_idx(files[labels]).astype(np.int64))
        for images, labels in FILES.values()
    )

    val = cfg.get("val", 5000)
    if val is None or not 0 < val < len(y_rest):
        raise UserError(f"mnist: val must be in 1..{len(y_rest) - 1}, got {val}")
    held = _subset(y_rest, val, seed, "val")
    fit = np.setdiff1d(np.arange(len(y_rest)), held)
    fit = fit[_subset(y_rest[fit], cfg.get("train_size"), seed, "train_size")]
    test = _subset(y_test, cfg.get("test_size"), seed, "test_size")

    size = cfg.get("size", 32)
    return Dataset(
        x_train=_images(x_rest[fit], size),
        y_train=torch.from_numpy(y_rest[fit]),
        x_val=_images(x_rest[held], size),
        y_val=torch.from_numpy(y_rest[held]),
        x_test=_images(x_test[test], size),
        y_test=torch.from_numpy(y_test[test]),
        num_classes=10,
        feature_names=[],
        name="mnist",
        shift=torch.zeros(()),
        scale=torch.ones(()),
        bounds=(0.0, 1.0),
        files={"root": list(files.values())},
    )
