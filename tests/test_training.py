"""The shared training loop: stopping rules and the batched validation loss."""

import math
import signal

import pytest
import torch
from torch import nn

from flowcf.training import PREEMPTION_SIGNAL, fit, mean_loss


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


def test_a_preemption_signal_mid_epoch_checkpoints_that_epoch_then_reaches_its_handler(tmp_path):
    """As in a SLURM job, where submitit's handler of USR2 requeues the job and exits: the signal
    waits for the end of the epoch and its checkpoint; resuming from it ends exactly as an
    uninterrupted training."""
    x, y = data()
    common = dict(epochs=6, batch_size=100, lr=1e-2, progress=False, checkpoint_every=math.inf)
    calls = 0

    def signalling_mse(model, x, y):
        nonlocal calls
        calls += 1
        if calls == 20:  # 15 training and 3 validation batches per epoch: in epoch 2
            signal.raise_signal(PREEMPTION_SIGNAL)
        return mse(model, x, y)

    def requeue_and_exit(signum, frame):
        raise SystemExit(signum)

    checkpoint = tmp_path / "checkpoint.pt"
    submitit_handler = signal.signal(PREEMPTION_SIGNAL, requeue_and_exit)
    try:
        torch.manual_seed(1)
        with pytest.raises(SystemExit, match=str(int(PREEMPTION_SIGNAL))):
            fit(nn.Linear(3, 1), signalling_mse, (x, y), (x, y), checkpoint=checkpoint, **common)
        assert signal.getsignal(PREEMPTION_SIGNAL) is requeue_and_exit
    finally:
        signal.signal(PREEMPTION_SIGNAL, submitit_handler)
    assert torch.load(checkpoint, weights_only=True)["epoch"] == 2

    models = []
    for resume in (checkpoint, None):
        torch.manual_seed(1)
        models.append(nn.Linear(3, 1))
        fit(models[-1], mse, (x, y), (x, y), checkpoint=resume, **common)
    for key, value in models[0].state_dict().items():
        assert torch.equal(value, models[1].state_dict()[key]), key
