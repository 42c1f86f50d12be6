"""Tests for the MNIST loader: the shipped files, IDX parsing, layouts, splits and errors."""

import gzip
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from flowcf.data import DATASETS, Dataset
from flowcf.data.mnist import FILES, find_files, read_idx
from flowcf.errors import UserError

CONF = Path(__file__).parents[1] / "conf" / "data" / "mnist.yaml"
ROOT = Path(os.environ.get("FLOWCF_DATA", "/work/shared/data"))
SMALL = {"val": 100, "train_size": 300, "test_size": 200}


def data_config() -> dict:
    """``conf/data/mnist.yaml``'s data keys (a ``_global_`` package nests them under ``data``)."""
    cfg = OmegaConf.to_container(OmegaConf.load(CONF))
    return cfg.get("data", cfg)


def config(root: str | Path, **overrides) -> dict:
    return data_config() | {"root": str(root)} | overrides


def load(seed: int = 0, root: str | Path = ROOT, **overrides) -> Dataset:
    return DATASETS.build("mnist", config(root, **overrides), seed)


def splits(ds: Dataset) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [(ds.x_train, ds.y_train), (ds.x_val, ds.y_val), (ds.x_test, ds.y_test)]


def has_mnist() -> bool:
    try:
        find_files(ROOT)
    except UserError:
        return False
    return True


real = pytest.mark.skipif(
    not has_mnist(), reason=f"MNIST IDX files not under {ROOT} (set FLOWCF_DATA to their folder)"
)


def write_idx(path: Path, array: np.ndarray) -> None:
    """Writes ``array`` (uint8) as an IDX file, gzip-compressed if ``path`` ends in ``.gz``."""
    header = bytes([0, 0, 0x08, array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
    data = header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    (gzip.open if path.suffix == ".gz" else open)(path, "wb").write(data)


def write_fake_mnist(folder: Path, suffix: str = "") -> dict[str, np.ndarray]:
    """Tiny MNIST-like files in ``folder``: 60 train and 20 test digits, every class present."""
    rng = np.random.default_rng(0)
    arrays = {}
    for (images, labels), n in zip(FILES.values(), (60, 20), strict=True):
        arrays[images] = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        arrays[labels] = (np.arange(n) % 10).astype(np.uint8)
    for name, array in arrays.items():
        write_idx(folder / f"{name}{suffix}", array)
    return arrays


def test_registered_and_configured():
    cfg = data_config()
    assert "mnist" in DATASETS
    assert cfg["name"] == "mnist" and cfg["kind"] == "image" and not cfg["download"]
    assert cfg["size"] == 32 and cfg["val"] == 5000 and cfg["train_size"] is None


@real
def test_shapes_range_labels_and_stratification():
    ds = load(**SMALL)

    assert ds.name == "mnist" and ds.num_classes == 10 and ds.shape == (1, 32, 32)
    assert [len(y) for _, y in splits(ds)] == [300, 100, 200]
    for x, y in splits(ds):
        assert x.dtype == torch.float32 and x.shape == (len(y), 1, 32, 32)
        assert x.min() >= 0 and x.max() <= 1 and x.max() > 0.9
        assert y.dtype == torch.int64 and torch.equal(y.unique(), torch.arange(10))
        counts = torch.bincount(y, minlength=10) / len(y)
        assert (counts - 0.1).abs().max() < 0.025  # MNIST's classes are 9-11 % each
    assert torch.cdist(ds.x_train.flatten(1), ds.x_val.flatten(1)).min() > 0  # disjoint
    assert torch.equal(ds.to_raw(ds.x_test), ds.x_test)


@real
def test_seeding():
    a, b, c = load(0, **SMALL), load(0, **SMALL), load(1, **SMALL)

    for (xa, ya), (xb, yb) in zip(splits(a), splits(b), strict=True):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    assert not torch.equal(a.x_train, c.x_train) and not torch.equal(a.x_test, c.x_test)


@real
def test_full_splits_and_official_test_order_at_28_pixels():
    ds = load(size=28, val=5000, train_size=None, test_size=None)

    assert [len(y) for _, y in splits(ds)] == [55000, 5000, 10000]
    files = find_files(ROOT)
    images, labels = FILES["test"]
    assert torch.equal(ds.y_test, torch.from_numpy(read_idx(files[labels]).astype(np.int64)))
    raw = torch.from_numpy(read_idx(files[images]).astype(np.float32))
    assert torch.allclose(ds.x_test[:, 0] * 255, raw, atol=1e-3)


@pytest.mark.parametrize(
    ("folder", "suffix"),
    [(".", ""), (".", ".gz"), ("mnist", ".gz"), ("MNIST/raw", "")],
    ids=["plain", "gzip", "shipped", "torchvision"],
)
def test_layouts(tmp_path, folder, suffix):
    arrays = write_fake_mnist(tmp_path / folder, suffix)
    assert np.array_equal(
        read_idx(tmp_path / folder / f"t10k-labels-idx1-ubyte{suffix}"),
        arrays["t10k-labels-idx1-ubyte"],
    )

    ds = load(root=tmp_path, size=32, val=10)

    assert [len(y) for _, y in splits(ds)] == [50, 10, 20]
    assert ds.x_test.shape == (20, 1, 32, 32)
    assert torch.equal(ds.y_test, torch.arange(20) % 10)
    assert torch.equal(torch.bincount(ds.y_val), torch.ones(10, dtype=torch.int64))
    # Bilinear resizing keeps the mean brightness of an image up to interpolation error.
    mean = arrays["t10k-images-idx3-ubyte"].mean(axis=(1, 2)) / 255
    assert np.allclose(ds.x_test.mean(dim=(1, 2, 3)).numpy(), mean, atol=0.02)


def test_missing_files_name_the_paths_and_the_fixes(tmp_path):
    root = tmp_path / "nowhere"
    with pytest.raises(UserError) as info:
        load(root=root)
    message = str(info.value)

    assert "\n" not in message
    for text in (str(root / "mnist"), str(root / "MNIST" / "raw"), "train-images-idx3-ubyte"):
        assert text in message
    for fix in ("data.root=", "FLOWCF_DATA", "data.download=true"):
        assert fix in message


def test_bad_files_and_sizes(tmp_path):
    write_fake_mnist(tmp_path)
    with pytest.raises(UserError, match="train_size"):
        load(root=tmp_path, val=10, train_size=5)  # fewer than the 10 classes
    with pytest.raises(UserError, match="test_size"):
        load(root=tmp_path, val=10, test_size=21)
    with pytest.raises(UserError, match="val"):
        load(root=tmp_path, val=60)

    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(b"not an idx file")
    with pytest.raises(UserError, match="t10k-labels-idx1-ubyte"):
        load(root=tmp_path, val=10)


def test_failed_download_is_a_user_error(tmp_path, monkeypatch):
    import torchvision.datasets

    def offline(*args, **kwargs):
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz\nall mirrors failed")

    monkeypatch.setattr(torchvision.datasets, "MNIST", offline)
    with pytest.raises(UserError, match=r"downloading into .* failed") as info:
        load(root=tmp_path, download=True)
    assert "\n" not in str(info.value)
