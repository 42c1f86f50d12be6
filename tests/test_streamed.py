"""Image splits streamed from a uint8 file index as the float tensor they stand for."""

import pytest
import torch
from torch import nn

from flowcf.data.streamed import StreamedImages, write_images
from flowcf.density import class_quantiles
from flowcf.methods.base import Counterfactuals
from flowcf.metrics import EvaluationContext, compute_metrics


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


@pytest.mark.filterwarnings("ignore:`torch.jit:FutureWarning")
def test_fid_against_streamed_real_images_is_fid_against_the_tensor(images, tmp_path):
    x, streamed = images
    torch.jit.save(torch.jit.script(Features()), tmp_path / "features.pt")
    cfs = Counterfactuals(x=x[:4], x_cf=x[4:8] * 0.8, y=torch.zeros(4).long(),
                          y_target=torch.ones(4).long(), found=torch.ones(4).bool(),
                          steps=torch.ones(4).long(), seconds=1.0)  # fmt: skip
    y_real = torch.tensor([1, 0, 1, 1, 0, 1, 1, 0, 1, 0, 1])

    def fid(x_real) -> float:
        classifier = nn.Sequential(nn.Flatten(), nn.Linear(75, 2))
        nn.init.zeros_(classifier[1].weight), nn.init.constant_(classifier[1].bias, 0)
        classifier[1].bias.data[1] = 1  # every image is class 1: every counterfactual is valid
        context = EvaluationContext(cfs, classifier, None, x, y_real, 2,
                                    {"fid_weights": str(tmp_path / "features.pt"),
                                     "batch_size": 3}, x_real=x_real, y_real=y_real)  # fmt: skip
        return compute_metrics(["fid"], context)["fid"]

    assert fid(streamed) == fid(x) > 0
