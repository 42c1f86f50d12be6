"""Image splits kept on disk as uint8 and read as float32 only where they are indexed.

A split of N images is one ``.npy`` file of uint8 (N, C, H, W), written once (:func:`write_images`)
and read through a fresh memory map per access (:class:`StreamedImages`), so a process holds the
images of the batch it asks for, never the split: CelebA's 162,770 training faces at 256 x 256
are 32 GB as uint8 and would be 128 GB as float32.

Examples:
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "images.npy"
    >>> batches = [torch.full((2, 3, 4, 4), 255, dtype=torch.uint8), torch.zeros(1, 3, 4, 4,
    ...            dtype=torch.uint8)]
    >>> x = StreamedImages(write_images(path, batches, (3, 3, 4, 4)))
    >>> len(x), x.shape, x[torch.tensor([2, 0])][:, 0, 0, 0].tolist()
    (3, torch.Size([3, 3, 4, 4]), [0.0, 1.0])
    >>> [tuple(chunk.shape) for chunk in x.split(2)]
    [(2, 3, 4, 4), (1, 3, 4, 4)]
"""

from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from flowcf.io import atomic_write

__all__ = ["StreamedImages", "write_images"]


def write_images(path: str | Path, batches: Iterable[Tensor], shape: tuple[int, ...]) -> Path:
    """Writes uint8 image ``batches`` (B, C, H, W), in order, as one ``.npy`` array of ``shape``
    at ``path``, atomically, holding one batch at a time.

    Raises:
        ValueError: If the batches do not add up to ``shape``.
    """
    header = {"descr": "|u1", "fortran_order": False, "shape": tuple(shape)}

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as file:
            np.lib.format.write_array_header_1_0(file, header)
            written = sum(file.write(batch.contiguous().numpy()) for batch in batches)
        if written != np.prod(shape):
            raise ValueError(f"{path}: the batches hold {written} bytes, not the {shape} asked")

    return atomic_write(path, write)


class StreamedImages:
    r"""An image split in a uint8 ``.npy`` file, indexed as a float32 tensor in :math:`[0, 1]`
    of its shape would be: ``x[rows]`` (a tensor of row indices or a mask), ``x[a:b]`` and
    ``x.split(n)`` (chunks, one at a time) read those rows and return them on :attr:`device`;
    ``x.to(device)`` is the same file read to another device.

    Arguments:
        path: The ``.npy`` file of uint8 (N, C, H, W).
        device: Where indexed images go.
    """

    dtype = torch.float32

    def __init__(self, path: str | Path, device: torch.device | str = "cpu"):
        self.path, self.device = Path(path), torch.device(device)
        self.shape = torch.Size(self._array().shape)

    def _array(self) -> np.memmap:
        return np.load(self.path, mmap_mode="r")

    @property
    def is_cuda(self) -> bool:
        return self.device.type == "cuda"

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index: Tensor | slice | int) -> Tensor:
        rows = np.arange(len(self))[index.cpu().numpy() if isinstance(index, Tensor) else index]
        images = torch.from_numpy(np.take(self._array(), rows, axis=0))  # a copy; the map closes
        return images.to(self.device).float().div_(255)

    def split(self, size: int) -> Iterator[Tensor]:
        """The images in chunks of ``size`` rows (the last may be smaller), read one by one."""
        return (self[start : start + size] for start in range(0, len(self), size))

    def to(self, device: torch.device | str) -> "StreamedImages":
        return StreamedImages(self.path, device)

    def __repr__(self) -> str:
        return f"StreamedImages({str(self.path)!r}, {tuple(self.shape)}, {self.device})"
