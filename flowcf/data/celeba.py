r"""CelebA face attributes as :math:`(N, 3, S, S)` images in :math:`[0, 1]`, labelled by one
attribute (``Smiling`` by default), with further attributes as the flow's context.

The loader reads a user's copy of CelebA in its standard layout (the aligned-and-cropped images
and the annotation files as published, https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html) from
``<root>/celeba/`` or ``<root>/``::

    img_align_celeba/000001.jpg ...   178 x 218 JPEGs
    list_attr_celeba.txt              the image count; the 40 attribute names; then one line
                                      per image: "000001.jpg -1  1  1 -1 ..." (1 present, -1 not)
    list_eval_partition.txt           "000001.jpg 0" per image: 0 train, 1 validation, 2 test

Nothing is downloaded (CelebA's licence is for non-commercial research, and the files are
several gigabytes). Each image is centre-cropped to ``crop`` x ``crop`` (178, the width of the
aligned images, as torchvision's ``CenterCrop(178)``) and resized to ``size`` x ``size`` with
PIL's antialiased bilinear filter. The splits are the official partition; ``train_size``,
``val_size`` and ``test_size`` (``None`` = all) draw seeded random subsets of them.

Each split is decoded once, in ``workers`` DataLoader processes (0: in this process), into a
uint8 file in ``cache`` (default ``<folder>/cache``), named by the images' names, sizes and
modification times, ``size`` and ``crop``; the data set's images are
:class:`~flowcf.data.streamed.StreamedImages` read from it batch by batch, so memory does not
grow with the split. Full CelebA takes 3·size² bytes per image: 2.5 GB at 64, 10 GB at 128,
40 GB at 256.

Labels are ``attribute`` (present = class 1, named ``Smiling=1``; absent = class 0,
``Smiling=0``). :attr:`~flowcf.data.base.Dataset.attributes` holds ``attribute`` followed by
``attributes``, the multi-label context of a PluGeN flow.

References:
    | Deep Learning Face Attributes in the Wild (Liu et al., ICCV 2015)
    | https://arxiv.org/abs/1411.7766

Examples:
    >>> ds = DATASETS.build(  # doctest: +SKIP
    ...     "celeba", {"root": "data", "size": 64, "attribute": "Smiling",
    ...     "attributes": ["Male", "Young"]}, seed=0,
    ... )
    >>> ds.shape, ds.class_names, ds.attributes.names  # doctest: +SKIP
    ((3, 64, 64), ['Smiling=0', 'Smiling=1'], ['Smiling', 'Male', 'Young'])
"""

import hashlib
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import DataLoader

from flowcf.data.base import DATASETS, Attributes, Dataset
from flowcf.data.streamed import StreamedImages, write_images
from flowcf.errors import UserError

__all__ = ["ATTRIBUTES_FILE", "IMAGES", "PARTITION_FILE", "find_root", "read_attributes",
           "read_partition"]  # fmt: skip

log = logging.getLogger(__name__)

IMAGES, ATTRIBUTES_FILE, PARTITION_FILE = (
    "img_align_celeba",
    "list_attr_celeba.txt",
    "list_eval_partition.txt",
)
SPLITS = ("train", "val", "test")  # partition codes 0, 1, 2
URL = "https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html"


def find_root(root: str | Path) -> Path:
    """The first of ``<root>/celeba`` and ``<root>`` that holds the CelebA layout."""
    root = Path(root).expanduser()
    folders = [root / "celeba", root]
    for folder in folders:
        if (folder / IMAGES).is_dir() and all(
            (folder / name).is_file() for name in (ATTRIBUTES_FILE, PARTITION_FILE)
        ):
            return folder
    raise UserError(
        f"CelebA not found: looked in {' and '.join(map(str, folders))} for {IMAGES}/*.jpg, "
        f"{ATTRIBUTES_FILE} and {PARTITION_FILE} (the aligned-and-cropped images and the "
        f"annotations, published at {URL}); put them there or set data.root=<dir> "
        "(or FLOWCF_DATA=<dir>); nothing is downloaded"
    )


def read_attributes(path: str | Path) -> tuple[list[str], list[str], np.ndarray]:
    """Reads ``list_attr_celeba.txt``.

    Returns:
        The attribute names, the image file names and the attributes, int8 (N, K) in {0, 1}.

    Raises:
        UserError: Naming the file and line of the first problem.
    """
    lines = Path(path).read_text().splitlines()
    if len(lines) < 2 or not lines[0].strip().isdigit():
        raise UserError(f"{path}:1: expected the number of images, then a line of attribute names")
    count, names = int(lines[0]), lines[1].split()
    files, rows = [], []
    for number, line in enumerate(lines[2:], start=3):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != len(names) + 1 or any(v not in ("1", "-1") for v in fields[1:]):
            raise UserError(
                f"{path}:{number}: expected an image name and {len(names)} values of 1 or -1, "
                f"got {line.strip()[:60]!r}"
            )
        files.append(fields[0])
        rows.append([v == "1" for v in fields[1:]])
    if len(files) != count:
        raise UserError(f"{path}:1: says {count} images, but the file lists {len(files)}")
    return names, files, np.asarray(rows, dtype=np.int8).reshape(len(files), len(names))


def read_partition(path: str | Path) -> dict[str, int]:
    """Reads ``list_eval_partition.txt``: image file name → 0 (train), 1 (val) or 2 (test)."""
    partition = {}
    for number, line in enumerate(Path(path).read_text().splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2 or fields[1] not in ("0", "1", "2"):
            raise UserError(f"{path}:{number}: expected '<image>.jpg 0|1|2', got {line!r}")
        partition[fields[0]] = int(fields[1])
    return partition


class _Images(torch.utils.data.Dataset):
    """Decodes, centre-crops and resizes JPEGs to uint8 tensors (3, size, size)."""

    def __init__(self, paths: Sequence[Path], size: int, crop: int):
        self.paths, self.size, self.crop = paths, size, crop

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> Tensor:
        path = self.paths[index]
        try:
            with Image.open(path) as image:
                image = image.convert("RGB")
        except OSError as error:
            raise UserError(f"celeba: {path} is missing or not an image ({error})") from None
        w, h = image.size
        side = min(self.crop, w, h)
        left, top = (w - side) // 2, (h - side) // 2
        image = image.crop((left, top, left + side, top + side))
        image = image.resize((self.size, self.size), Image.Resampling.BILINEAR)
        return torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1)


def _cache_name(folder: Path, paths: Sequence[Path], size: int, crop: int) -> str:
    """The cache file of the images at ``paths``: named by a hash of the folder, ``size``,
    ``crop`` and each image's name, byte size and modification time, so a changed image is
    decoded anew; a missing image fails here, before any decoding."""
    digest = hashlib.sha256(f"{folder.resolve()} {size} {crop}".encode())
    for path in paths:
        try:
            stat = path.stat()
        except FileNotFoundError:
            raise UserError(f"celeba: {path} is listed in {ATTRIBUTES_FILE} but missing") from None
        digest.update(f"\n{path.name} {stat.st_size} {stat.st_mtime_ns}".encode())
    return f"celeba-{size}px-crop{crop}-{len(paths)}-{digest.hexdigest()[:16]}.npy"


def _images(folder: Path, paths: Sequence[Path], size: int, crop: int, workers: int,
            cache: Path) -> StreamedImages:  # fmt: skip
    """The images at ``paths`` (N, 3, size, size) streamed from the uint8 cache in ``cache``,
    decoded into it on first use."""
    path = cache / _cache_name(folder, paths, size, crop)
    if not path.is_file():
        gigabytes = len(paths) * 3 * size * size / 1e9
        log.info("CelebA: decoding %d images to %dx%d into %s (%.2f GB, once)", len(paths),
                 size, size, path, gigabytes)  # fmt: skip
        loader = DataLoader(_Images(paths, size, crop), batch_size=256, num_workers=workers)
        try:
            write_images(path, loader, (len(paths), 3, size, size))
        except PermissionError as error:
            raise UserError(f"celeba: cannot write the image cache {path} ({error.strerror}); "
                            "set data.cache=<writable dir>") from None  # fmt: skip
    return StreamedImages(path)


def _subset(rows: np.ndarray, size: int | None, rng: np.random.Generator, what: str):
    """A seeded random subset of ``size`` rows, in file order (all if ``None``)."""
    if size is None or size == len(rows):
        return rows
    if not 0 < size <= len(rows):
        raise UserError(f"celeba: {what} must be in 1..{len(rows)} or null, got {size}")
    return np.sort(rng.choice(rows, size, replace=False))


@DATASETS.register("celeba")
def load(cfg: Mapping, seed: int) -> Dataset:
    """Loads CelebA as described in the module docstring.

    Arguments:
        cfg: The data config: ``root``, ``size``, ``crop``, ``attribute``, ``attributes``,
            ``train_size``, ``val_size``, ``test_size``, ``workers`` and ``cache`` (see
            ``conf/data/celeba.yaml``).
        seed: The seed of the subsets.

    Returns:
        The data set, images of shape ``(3, size, size)``, two classes.
    """
    folder = find_root(cfg["root"])
    names, files, values = read_attributes(folder / ATTRIBUTES_FILE)
    attribute = cfg.get("attribute", "Smiling")
    context = [attribute, *(a for a in cfg.get("attributes") or [] if a != attribute)]
    unknown = [a for a in context if a not in names]
    if unknown:
        raise UserError(
            f"celeba: unknown attribute {', '.join(unknown)} (data.attribute, data.attributes); "
            f"{ATTRIBUTES_FILE} has: {', '.join(names)}"
        )
    partition = read_partition(folder / PARTITION_FILE)
    missing = [f for f in files if f not in partition]
    if missing:
        raise UserError(
            f"{folder / PARTITION_FILE} has no partition for {len(missing)} images of "
            f"{ATTRIBUTES_FILE}, e.g. {missing[0]}"
        )
    size, crop, workers = cfg.get("size", 64), cfg.get("crop", 178), cfg.get("workers", 0)
    cache = Path(cfg.get("cache") or folder / "cache").expanduser()
    codes = np.asarray([partition[f] for f in files])
    rng = np.random.default_rng(seed)
    columns = [names.index(a) for a in context]
    images, labels = {}, {}
    read = [folder / ATTRIBUTES_FILE, folder / PARTITION_FILE]
    for code, split in enumerate(SPLITS):
        limit = cfg.get(f"{split}_size")
        rows = _subset(np.flatnonzero(codes == code), limit, rng, f"{split}_size")
        if len(rows) == 0:
            raise UserError(f"celeba: the {split} split of {folder / PARTITION_FILE} is empty")
        paths = [folder / IMAGES / files[r] for r in rows]
        images[split] = _images(folder, paths, size, crop, workers, cache)
        read += paths
        labels[split] = torch.from_numpy(values[rows][:, columns].astype(np.float32))
    return Dataset(
        x_train=images["train"],
        y_train=labels["train"][:, 0].long(),
        x_val=images["val"],
        y_val=labels["val"][:, 0].long(),
        x_test=images["test"],
        y_test=labels["test"][:, 0].long(),
        num_classes=2,
        feature_names=[],
        name="celeba",
        shift=torch.zeros(()),
        scale=torch.ones(()),
        bounds=(0.0, 1.0),
        attributes=Attributes(context, labels["train"], labels["val"], labels["test"]),
        class_names=[f"{attribute}=0", f"{attribute}=1"],
        files={"root": read},
    )
