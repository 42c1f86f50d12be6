"""Tests for the counterfactual pictures."""

import pytest
import torch
from PIL import Image

from flowcf.report.plots import plot_counterfactuals_2d


def gaussian_log_density(grid: torch.Tensor) -> torch.Tensor:
    assert grid.dtype == torch.float32 and grid.shape[-1] == 2
    return -(grid - 1).square().sum(dim=-1) / 2


def linear_predict(grid: torch.Tensor) -> torch.Tensor:
    return (grid.sum(dim=-1) > 0).long()


@pytest.mark.parametrize("with_missing", [False, True])
def test_plot_counterfactuals_2d(tmp_path, with_missing):
    generator = torch.Generator().manual_seed(0)
    x_train = torch.randn(200, 2, generator=generator)
    y_train = linear_predict(x_train)
    x = torch.randn(6, 2, generator=generator) - 1
    x_cf = x + 2
    valid = linear_predict(x_cf) == 1
    valid[0] = False
    if with_missing:
        x_cf[1:3] = float("nan")
        valid[1:3] = False

    path = tmp_path / "plots" / "cf.png"
    plot_counterfactuals_2d(
        path,
        x_train=x_train,
        y_train=y_train,
        log_density=gaussian_log_density,
        predict=linear_predict,
        x=x,
        x_cf=x_cf,
        valid=valid,
        title="test",
    )

    assert path.stat().st_size > 1000
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert 200 <= image.width <= 2000 and 200 <= image.height <= 2000
    assert list(path.parent.iterdir()) == [path]  # no temporary file left behind


def test_plot_without_any_counterfactual(tmp_path):
    x = torch.zeros(3, 2)
    path = tmp_path / "none.png"
    plot_counterfactuals_2d(
        path,
        x_train=torch.randn(50, 2),
        y_train=torch.zeros(50, dtype=torch.long),
        log_density=gaussian_log_density,
        predict=lambda grid: torch.zeros(len(grid), dtype=torch.long),
        x=x,
        x_cf=torch.full_like(x, float("nan")),
        valid=torch.zeros(3, dtype=torch.bool),
        title="nothing found",
    )

    with Image.open(path) as image:
        assert image.format == "PNG"
