"""One minibatch training loop for every model (Adam, early stopping on the validation loss,
checkpoints to resume from), and the objectives a flow can be trained by."""

import copy
import inspect
import logging
import math
import os
import signal
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.optim import Adam
from tqdm.auto import tqdm

from flowcf.errors import UserError
from flowcf.flows import Flow
from flowcf.flows.cnf import flow_matching_loss
from flowcf.io import atomic_write
from flowcf.registry import Registry
from flowcf.rules import Count, Natural, NonNegative, Positive, check_options

__all__ = [
    "OBJECTIVES",
    "PREEMPTION_SIGNAL",
    "TRAIN_OPTIONS",
    "adam",
    "check_train",
    "fit",
    "mean_loss",
]

log = logging.getLogger(__name__)

Loss = Callable[[nn.Module, Tensor, Tensor], Tensor]

#: Flow training objectives by name (``model.objective``), as ``(flow, x, context) -> scalar``.
OBJECTIVES = Registry("objective")


@OBJECTIVES.register("mle")
def negative_log_likelihood(flow: Flow, x: Tensor, context: Tensor | None) -> Tensor:
    r"""Maximum likelihood: the mean of :math:`-\log p(x \mid c)` in nats."""
    return -flow.log_prob(x, context).mean()


OBJECTIVES.register("flow_matching")(flow_matching_loss)

#: The signal SLURM sends before it stops a job (submitit's ``--signal``, USR2 unless
#: ``SUBMITIT_PREEMPT_SIGNAL`` names another).
PREEMPTION_SIGNAL = signal.Signals["SIG" + os.environ.get("SUBMITIT_PREEMPT_SIGNAL", "USR2")]


class HeldPreemption:
    """Holds :data:`PREEMPTION_SIGNAL` while a training runs, when a Python handler is
    installed for it (submitit's, in a SLURM job: it requeues the job and exits): ``fit``
    checks :attr:`pending` at the end of each epoch, writes its checkpoint and stops, and on
    leaving (unless with an error), the held signal is passed on to that handler. Elsewhere the
    signal keeps its default action."""

    def __init__(self) -> None:
        self.handler = signal.getsignal(PREEMPTION_SIGNAL)
        self.signum: int | None = None

    @property
    def pending(self) -> bool:
        return self.signum is not None

    def hold(self, signum: int, frame) -> None:
        log.warning("%s: the training stops at the end of this epoch", signal.Signals(signum).name)
        self.signum = signum

    def __enter__(self) -> "HeldPreemption":
        if callable(self.handler):
            signal.signal(PREEMPTION_SIGNAL, self.hold)
        return self

    def __exit__(self, error_type, error, traceback) -> None:
        if callable(self.handler):
            signal.signal(PREEMPTION_SIGNAL, self.handler)
            if self.pending and error_type is None:
                self.handler(self.signum, None)


def adam(parameters: Iterable[nn.Parameter], lr: float, weight_decay: float = 0.0) -> Adam:
    """The optimizer :func:`fit` trains with: Adam fused into one kernel per step (the CPU and
    CUDA, flowcf's devices, have it), several times faster than torch's per-tensor loop on the
    many small parameter tensors of a flow."""
    return Adam(parameters, lr=lr, weight_decay=weight_decay, fused=True)


@torch.no_grad()
def mean_loss(model: nn.Module, loss: Loss, data: tuple[Tensor, Tensor], batch_size: int) -> float:
    """The mean of ``loss`` over ``data``, computed in batches (the loss is a batch mean)."""
    x, y = data
    total = sum(
        loss(model, x[index], y[index]).item() * len(index)
        for index in torch.arange(len(x), device=x.device).split(max(batch_size, 512))
    )
    return total / len(x)


def fit(
    model: nn.Module,
    loss: Loss,
    train: tuple[Tensor, Tensor],
    val: tuple[Tensor, Tensor],
    *,
    epochs: Count,
    batch_size: Count,
    lr: Positive,
    weight_decay: NonNegative = 0.0,
    patience: Natural | None = None,
    minutes: NonNegative | None = None,
    amp: bool = False,
    checkpoint: Path | None = None,
    checkpoint_every: float = 10.0,
    progress: bool = True,
    desc: str = "train",
) -> dict[str, float]:
    """Minimises ``loss(model, x, y)`` (a scalar mean) and keeps the best validation state.

    Batches are drawn with ``torch.randperm`` from the global generator, so the seed fixes them.
    Training stops after ``epochs``, after ``patience`` epochs without a better validation
    loss, or at the end of the first epoch that finishes after ``minutes`` of training.
    With ``amp`` the training steps run under :func:`torch.autocast` (float16 with a gradient
    scaler on CUDA, bfloat16 on the CPU); validation stays in full precision.

    With a ``checkpoint`` file, the complete training state (model, optimizer, best state, epoch,
    random generator, elapsed time) is saved there atomically at the end of the first epoch
    ``checkpoint_every`` seconds after the previous save, and training resumes from it when it
    exists; as batches come from the saved generator, a resumed training ends exactly where an
    uninterrupted one would. A SLURM job's preemption signal (:class:`HeldPreemption`) is held
    until the end of the epoch, which then writes the checkpoint before the job is requeued.

    Returns:
        Training summary: best validation loss, the epoch it was reached, epochs run and
        wall-clock seconds.
    """
    x, y = train
    optimizer = adam(model.parameters(), lr, weight_decay)
    device = x.device.type
    scaler = torch.amp.GradScaler(device, enabled=amp and device == "cuda")
    best = (math.inf, 0, copy.deepcopy(model.state_dict()))
    first, elapsed = 1, 0.0
    if checkpoint is not None and checkpoint.exists():
        try:
            state = torch.load(checkpoint, map_location=x.device, weights_only=True)
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            if scaler.is_enabled():
                scaler.load_state_dict(state["scaler"])
        except Exception as error:
            raise UserError(
                f"{desc}: cannot resume from {checkpoint} ({type(error).__name__}); delete it "
                "or pass resume=false to start over"
            ) from error
        best, first, elapsed = tuple(state["best"]), state["epoch"] + 1, state["seconds"]
        torch.set_rng_state(state["rng"])
        if x.is_cuda:
            torch.cuda.set_rng_state(state["cuda_rng"], x.device)
        log.info("%s: resuming from the checkpoint of epoch %d (%s)", desc, first - 1, checkpoint)
    start = saved = time.perf_counter() - elapsed
    bar = tqdm(range(first, epochs + 1), desc=desc, disable=not progress, leave=False)
    epoch = first - 1
    with HeldPreemption() as preemption:
        for epoch in bar:
            model.train()
            for index in torch.randperm(len(x), device=x.device).split(batch_size):
                with torch.autocast(device, enabled=amp):
                    value = loss(model, x[index], y[index])
                if not torch.isfinite(value):
                    raise UserError(
                        f"{desc}: the loss became {value.item()} at epoch {epoch}; "
                        "lower the learning rate"
                    )
                optimizer.zero_grad()
                scaler.scale(value).backward()
                scaler.step(optimizer)
                scaler.update()
            model.eval()
            val_loss = mean_loss(model, loss, val, batch_size)
            bar.set_postfix(val=f"{val_loss:.4f}")
            if val_loss < best[0]:
                best = (val_loss, epoch, copy.deepcopy(model.state_dict()))
            elif patience is not None and epoch - best[1] >= patience:
                break
            if minutes is not None and time.perf_counter() - start > 60 * minutes:
                break
            due = preemption.pending or time.perf_counter() - saved >= checkpoint_every
            if checkpoint is not None and due:
                saved = time.perf_counter()
                state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                         "best": list(best), "epoch": epoch, "seconds": saved - start,
                         "rng": torch.get_rng_state(), "scaler": scaler.state_dict()}  # fmt: skip
                if x.is_cuda:
                    state["cuda_rng"] = torch.cuda.get_rng_state(x.device)
                atomic_write(checkpoint, lambda tmp, state=state: torch.save(state, tmp))
            if preemption.pending:
                break
    model.load_state_dict(best[2])
    model.eval()
    seconds = time.perf_counter() - start
    return {"best_val_loss": best[0], "best_epoch": best[1], "epochs": epoch, "seconds": seconds}


#: The options of a ``train`` config section: :func:`fit`'s settings (callers pass the rest).
TRAIN_OPTIONS = ("epochs", "batch_size", "lr", "weight_decay", "patience", "minutes")


def check_train(key: str, options: Mapping) -> None:
    """Checks the ``train`` config section ``key`` against :func:`fit`'s settings."""
    parameters = inspect.signature(fit).parameters
    check_options(key, options, {k: parameters[k] for k in TRAIN_OPTIONS}, "training")
