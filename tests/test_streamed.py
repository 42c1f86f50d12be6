"""Image splits streamed from a uint8 file index as the float tensor they stand for."""

import json
import subprocess
import sys

import pytest
import torch
from torch import nn

from flowcf.counterfactuals import Counterfactuals
from flowcf.data.streamed import StreamedImages, write_images
from flowcf.density import class_quantiles
from flowcf.metrics import compute_metrics
from flowcf.setting import Setting


@pytest.fixture
def images(tmp_path) -> tuple[torch.Tensor, StreamedImages]:
    """Random uint8 images (N, 3, 5, 5) as the float tensor in [0, 1] and streamed from disk."""
    pixels = torch.randint(0, 256, (11, 3, 5, 5), generator=torch.Generator().manual_seed(0))
    path = write_images(tmp_path / "x.npy", pixels.to(torch.uint8).split(4), tuple(pixels.shape))
    return pixels.float() / 255, StreamedImages(path)


def test_indexing_slicing_and_chunks_read_what_the_tensor_holds(images):
    x, streamed = images
    assert len(streamed) == 11 and streamed.shape == x.shape and streamed.dtype == x.dtype
    rows = torch.tensor([7, 2, 2, 10])
    assert torch.equal(streamed[rows], x[rows])
    mask = torch.arange(11) % 3 == 0
    assert torch.equal(streamed[mask], x[mask])
    assert torch.equal(streamed[3:9], x[3:9]) and torch.equal(streamed[4], x[4])
    assert [len(c) for c in streamed.split(4)] == [4, 4, 3]
    assert torch.equal(torch.cat(list(streamed.split(4))), x)
    moved = streamed.to("cpu")
    assert moved.device == torch.device("cpu") and not moved.is_cuda
    assert torch.equal(moved[rows], x[rows])


def test_a_short_write_leaves_no_file(tmp_path):
    batch = torch.zeros(2, 3, 4, 4, dtype=torch.uint8)
    with pytest.raises(ValueError, match="not the"):
        write_images(tmp_path / "x.npy", [batch], (3, 3, 4, 4))
    assert not list(tmp_path.iterdir())


def test_quantiles_of_streamed_images_are_those_of_the_tensor(images):
    x, streamed = images

    class Brightness(nn.Module):  # log p(x | c) = mean pixel, shifted by the class
        def log_prob(self, x, context):
            return x.flatten(1).mean(1) + context[:, 1]

    y = torch.arange(11) % 2
    expected = class_quantiles(Brightness(), x, y, 2, 0.3)
    assert torch.equal(class_quantiles(Brightness(), streamed, y, 2, 0.3), expected)


class Features(nn.Module):
    """A stand-in for Inception with its contract: (N, 3, 299, 299) → (N, D)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.adaptive_avg_pool2d(self.conv(x), 3).flatten(1)


def scores(x: torch.Tensor, x_data, names: list[str], **options) -> dict[str, float]:
    """``names`` for counterfactuals 0.8 x[4:8] of x[:4], all valid (class 1), with ``x_data``
    as the training split and the real images (mostly class 1)."""
    classifier = nn.Sequential(nn.Flatten(), nn.Linear(75, 2))
    nn.init.zeros_(classifier[1].weight), nn.init.constant_(classifier[1].bias, 0)
    classifier[1].bias.data[1] = 1
    cfs = Counterfactuals(x=x[:4], x_cf=x[4:8] * 0.8, y=torch.zeros(4).long(),
                          y_target=torch.ones(4).long(), found=torch.ones(4).bool(),
                          steps=torch.ones(4).long(), seconds=1.0)  # fmt: skip
    y = torch.tensor([1, 0, 1, 1, 0, 1, 1, 0, 1, 0, 1])
    context = Setting(classifier, None, x_data, y, 2, cfs=cfs, options=options, x_real=x_data,
                      y_real=y)  # fmt: skip
    return compute_metrics(names, context)


@pytest.mark.filterwarnings("ignore:`torch.jit:FutureWarning")
def test_fid_against_streamed_real_images_is_fid_against_the_tensor(images, tmp_path):
    x, streamed = images
    torch.jit.save(torch.jit.script(Features()), tmp_path / "features.pt")
    options = {"fid_weights": str(tmp_path / "features.pt"), "batch_size": 3}
    assert scores(x, streamed, ["fid"], **options) == scores(x, x, ["fid"], **options)
    assert scores(x, x, ["fid"], **options)["fid"] > 0


@pytest.mark.filterwarnings("ignore:n_neighbors")
def test_metrics_over_the_streamed_training_split_are_those_over_the_tensor(images):
    x, streamed = images
    names = ["mad", "lof", "isolation_forest", "l2"]
    assert scores(x, streamed, names) == scores(x, x, names)


#: Trains a linear model for two epochs on random uint8 images (N, 3, 128, 128) streamed from
#: ``argv[1]/<N>.npy``, validated on them too, for each N of ``argv[2]`` (JSON) in turn in one
#: process, and prints the peak resident memory in bytes after each.
FIT = """
import json, resource, sys
import torch
from torch import nn
from flowcf.data.streamed import StreamedImages, write_images
from flowcf.training import fit
peaks = []
for count in json.loads(sys.argv[2]):
    shape = (count, 3, 128, 128)
    batches = (torch.randint(0, 256, (100, *shape[1:]), dtype=torch.uint8)
               for _ in range(count // 100))
    x = StreamedImages(write_images(f"{sys.argv[1]}/{count}.npy", batches, shape))
    y = torch.arange(count) % 2
    model = nn.Sequential(nn.AvgPool2d(16), nn.Flatten(), nn.Linear(192, 2))
    fit(model, lambda m, x, y: nn.functional.cross_entropy(m(x), y), (x, y), (x, y), epochs=2,
        batch_size=32, lr=1e-3, progress=False)
    peaks.append(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
print(json.dumps(peaks))
"""


def test_training_on_streamed_images_holds_a_batch_not_the_split(tmp_path):
    """Peak resident memory of ``fit`` on 600 and then on 6000 streamed images grows by less
    than half of what the 5400 extra images take as uint8 (265 MB; 1.06 GB as float32); what
    it grows by is the C allocator keeping freed batches (glibc keeps up to 64 MiB)."""
    counts = (600, 6000)
    process = subprocess.run([sys.executable, "-c", FIT, str(tmp_path), json.dumps(counts)],
                             capture_output=True, text=True, timeout=600)  # fmt: skip
    assert process.returncode == 0, process.stderr
    small, large = json.loads(process.stdout.splitlines()[-1])
    assert large - small < (counts[1] - counts[0]) * 3 * 128 * 128 / 2, (small, large)
