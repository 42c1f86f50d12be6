"""The shared training loop: stopping rules and the batched validation loss."""

import torch
from torch import nn

from flowcf.training import fit, mean_loss


def mse(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (model(x).squeeze(1) - y).square().mean()


def data(n: int = 1500) -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    x = torch.randn(n, 3)
    return x, x @ torch.tensor([1.0, -2.0, 0.5])


def test_mean_loss_in_batches_equals_the_full_batch_loss():
    model, (x, y) = nn.Linear(3, 1), data()
    with torch.no_grad():
        full = mse(model, x, y).item()
    assert abs(mean_loss(model, mse, (x, y), batch_size=100) - full) < 1e-5


def test_time_budget_stops_after_the_epoch_that_exceeds_it():
    x, y = data()
    model = nn.Linear(3, 1)
    common = dict(epochs=5, batch_size=100, lr=1e-2, progress=False)
    summary = fit(model, mse, (x, y), (x, y), minutes=0.0, **common)
    assert summary["epochs"] == 1
    assert fit(nn.Linear(3, 1), mse, (x, y), (x, y), **common)["epochs"] == 5
