"""flowcf's flows against zuko's and nflows' side by side: throughput and two-moons NLL.

All three libraries run in one process with the same thread count, batch size, number of layers,
hidden width and depth (SiLU conditioners), unconditional, float32 on the CPU:

- training steps/s (log_prob, backward, Adam step) and log_prob samples/s for RealNVP and MAF
  at 2 and 8 dimensions, as ratios flowcf / peer (> 1: flowcf is faster). flowcf steps with the
  optimizer ``flowcf train`` uses (fused Adam), the peers, which leave the loop to their users,
  with ``torch.optim.Adam`` as their examples do; flowcf with that same Adam is reported too.
  The contestants take turns in short bursts within each repeat, so load from other jobs on a
  shared machine hits them alike; the median of the repeats' ratios is reported with the
  lowest and highest. So is a ceiling: flowcf's flow hand-minimised into one function of its
  tensors (fused Adam), against nflows;
- two moons (noise 0.05, standardised): test NLL of each library's RealNVP after the same steps,
  and the test NLL each flowcf flow, configured as ``model=<name>`` configures it, reaches in a
  fixed wall-clock budget (batch 256, lr 1e-3; these trainings all step with flowcf's Adam).

    python scripts/bench_flows.py [--threads 1] [--repeats 5] [--moons-steps 3000] [--budget 60]

The table is printed and written to ``outputs/bench/flows.md``.
"""

import argparse
import math
import platform
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import torch
import torch.nn.functional as F
import zuko
from nflows.distributions.normal import StandardNormal as NflowsNormal
from nflows.flows.base import Flow as NflowsFlow
from nflows.transforms import (
    AffineCouplingTransform,
    CompositeTransform,
    MaskedAffineAutoregressiveTransform,
    ReversePermutation,
)
from omegaconf import OmegaConf
from sklearn.datasets import make_moons
from torch import Tensor, nn
from torch.optim import Adam

from flowcf.cli import CONFIG_DIR
from flowcf.flows import FLOWS
from flowcf.flows.coupling import MLP, alternating_masks
from flowcf.training import OBJECTIVES, adam

BATCH = 256
WIDTH, DEPTH = 64, 2
LAYERS = {"realnvp": 8, "maf": 5}
OUTPUT = Path("outputs/bench/flows.md")
#: Seconds each library runs before the next takes its turn.
BURST = 0.05

#: ``(library, flow, dim) -> (module, log_prob)``: each library's flow, same architecture.
LogProb = Callable[[Tensor], Tensor]


def flowcf_flow(name: str, dim: int) -> tuple[nn.Module, LogProb]:
    flow = FLOWS.build(name, dim, layers=LAYERS[name], hidden=WIDTH, depth=DEPTH)
    return flow, flow.log_prob


def zuko_flow(name: str, dim: int) -> tuple[nn.Module, LogProb]:
    flow_class = {"realnvp": zuko.flows.RealNVP, "maf": zuko.flows.MAF}[name]
    flow = flow_class(
        dim, transforms=LAYERS[name], hidden_features=[WIDTH] * DEPTH, activation=nn.SiLU
    )
    return flow, lambda x: flow().log_prob(x)


class NflowsMLP(MLP):
    """flowcf's conditioner network, called as nflows calls it: ``net(inputs, context)``."""

    def forward(self, x: Tensor, context: Tensor | None = None) -> Tensor:
        return super().forward(x)


def nflows_flow(name: str, dim: int) -> tuple[nn.Module, LogProb]:
    if name == "realnvp":
        transforms = [
            AffineCouplingTransform(~mask, lambda i, o: NflowsMLP(i, o, hidden=WIDTH, depth=DEPTH))
            for mask in alternating_masks(dim, LAYERS[name])
        ]
    else:  # nflows' MADE has one hidden layer more than its blocks
        transforms = []
        for _ in range(LAYERS[name]):
            transforms += [
                MaskedAffineAutoregressiveTransform(
                    dim, WIDTH, num_blocks=DEPTH - 1, use_residual_blocks=False,
                    activation=nn.functional.silu,
                ),
                ReversePermutation(dim),
            ]  # fmt: skip
    flow = NflowsFlow(CompositeTransform(transforms), NflowsNormal([dim]))
    return flow, flow.log_prob


LIBRARIES = {"flowcf": flowcf_flow, "zuko": zuko_flow, "nflows": nflows_flow}


def hand_minimised(name: str, dim: int) -> tuple[nn.Module, LogProb]:
    """flowcf's flow written out as one function of its tensors, with no nn.Module calls and no
    per-layer methods (checked against its ``log_prob``): about the least eager PyTorch can do
    for this architecture, so its rate bounds what restructuring flowcf's code could reach."""
    flow, _ = flowcf_flow(name, dim)
    with torch.no_grad():  # away from the zero-output start, so the check below means something
        for parameter in flow.parameters():
            parameter.add_(0.1 * torch.randn_like(parameter))
    layers = [
        (
            getattr(transform, "mask", None),  # a coupling's kept features (MAF: none)
            getattr(transform, "free", None),  # and its transformed parameters
            transform.scale_clamp,
            [(m.weight, m.bias, getattr(m, "mask", None)) for m in list(transform.net)[::2]],
        )
        for transform in flow.transforms
    ]
    constant = 0.5 * dim * math.log(2 * math.pi)

    def log_prob(x: Tensor) -> Tensor:
        total = 0.0
        for keep, free, bound, linears in layers:
            h = x if keep is None else x * keep
            for i, (weight, bias, mask) in enumerate(linears):
                h = F.linear(h, weight if mask is None else weight * mask, bias)
                h = F.silu(h) if i < len(linears) - 1 else h
            raw, shift = (h if free is None else h * free).chunk(2, 1)
            log_scale = bound * torch.tanh(raw / bound)
            x = torch.addcmul(shift, x, log_scale.exp())
            total = total + log_scale.sum(1)
        return total - 0.5 * x.square().sum(1) - constant

    with torch.no_grad():
        x = torch.randn(BATCH, dim)
        torch.testing.assert_close(log_prob(x), flow.log_prob(x))
    return flow, log_prob


#: What :func:`throughput` times: ``name -> (build, optimizer)``, the libraries, flowcf with
#: torch's Adam like the peers, and flowcf's flow hand-minimised.
CONTESTANTS = {
    "flowcf": (flowcf_flow, adam),
    "zuko": (zuko_flow, Adam),
    "nflows": (nflows_flow, Adam),
    "flowcf, torch Adam": (flowcf_flow, Adam),
    "hand-minimised": (hand_minimised, adam),
}


def interleaved_rates(works: dict[str, Callable[[], None]], seconds: float) -> dict[str, float]:
    """Calls per second of each of ``works``, which take turns in short bursts until each has run
    for ``seconds``, so load from other jobs on a shared machine hits them alike."""
    for work in works.values():
        work()  # warm-up
    elapsed, calls = dict.fromkeys(works, 0.0), dict.fromkeys(works, 0)
    while min(elapsed.values()) < seconds:
        for key, work in works.items():
            start = time.perf_counter()
            while (burst := time.perf_counter() - start) < BURST:
                work()
                calls[key] += 1
            elapsed[key] += burst
    return {key: calls[key] / elapsed[key] for key in works}


def throughput(
    name: str, dim: int, repeats: int, seconds: float
) -> dict[str, list[tuple[float, float]]]:
    """Training steps/s and log_prob samples/s of each of :data:`CONTESTANTS`, one pair per
    repeat."""
    torch.manual_seed(0)
    x = torch.randn(BATCH, dim)
    steps, evaluations = {}, {}
    for library, (build, make_optimizer) in CONTESTANTS.items():
        flow, log_prob = build(name, dim)
        optimizer = make_optimizer(flow.parameters(), lr=1e-4)

        def step(log_prob=log_prob, optimizer=optimizer):
            loss = -log_prob(x).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

        def evaluate(log_prob=log_prob):
            with torch.no_grad():
                log_prob(x)

        steps[library], evaluations[library] = step, evaluate
    runs: dict[str, list[tuple[float, float]]] = {library: [] for library in CONTESTANTS}
    for _ in range(repeats):
        train_rates = interleaved_rates(steps, seconds)
        eval_rates = interleaved_rates(evaluations, seconds)
        for library in CONTESTANTS:
            runs[library].append((train_rates[library], BATCH * eval_rates[library]))
    return runs


def ratio(runs: dict[str, list[tuple[float, float]]], i: int, of: str, to: str) -> str:
    """The median over repeats of the rate ratio ``of / to`` (``i`` 0: training, 1: log_prob),
    with the lowest and highest."""
    ratios = sorted(a[i] / b[i] for a, b in zip(runs[of], runs[to], strict=True))
    return f"{statistics.median(ratios):.2f} ({ratios[0]:.2f}–{ratios[-1]:.2f})"


def summary(runs: dict[str, list[tuple[float, float]]], i: int) -> list[str]:
    """flowcf's median rate (``i`` 0: training, 1: log_prob) and its ratios to zuko and
    nflows."""
    median = statistics.median(r[i] for r in runs["flowcf"])
    return [f"{median:,.0f}", *(ratio(runs, i, "flowcf", peer) for peer in ("zuko", "nflows"))]


def moons(n: int, seed: int) -> Tensor:
    x, _ = make_moons(n, noise=0.05, random_state=seed)
    return torch.as_tensor(x, dtype=torch.float32)


def train(
    loss: Callable[[Tensor], Tensor], flow: nn.Module, x: Tensor, steps: int, seconds: float
) -> int:
    """flowcf's Adam on ``loss`` of minibatches of ``x`` until ``steps`` steps or ``seconds``
    pass; returns the steps taken."""
    optimizer = adam(flow.parameters(), lr=1e-3)
    start, step = time.perf_counter(), 0
    while step < steps and time.perf_counter() - start < seconds:
        value = loss(x[torch.randint(len(x), (BATCH,))])
        optimizer.zero_grad()
        value.backward()
        optimizer.step()
        step += 1
    return step


def moons_nll(steps: int, budget: float, flows: list[str]) -> tuple[dict, dict]:
    """Test NLL of each library's RealNVP after ``steps`` steps, and of each flowcf flow
    (as ``model=<name>`` configures it, trained by its objective) after ``budget`` seconds."""
    train_x, test_x = moons(8192, seed=0), moons(8192, seed=1)
    mean, std = train_x.mean(0), train_x.std(0)
    train_x, test_x = (train_x - mean) / std, (test_x - mean) / std

    def nll(log_prob: LogProb) -> float:
        with torch.no_grad():
            return -log_prob(test_x).mean().item()

    same_steps = {}
    for library, build in LIBRARIES.items():
        torch.manual_seed(0)
        flow, log_prob = build("realnvp", 2)
        train(lambda b, log_prob=log_prob: -log_prob(b).mean(), flow, train_x, steps, math.inf)
        same_steps[library] = nll(log_prob)
    budgeted = {}
    for name in flows:
        torch.manual_seed(0)
        config = OmegaConf.load(CONFIG_DIR / "model" / f"{name}.yaml")
        options = {k: v for k, v in config.items() if k not in ("name", "train", "objective")}
        flow = FLOWS.build(name, 2, **options)
        objective = OBJECTIVES.get(config.get("objective", "mle"))
        taken = train(lambda b, f=flow, o=objective: o(f, b, None), flow, train_x, 10**9, budget)
        budgeted[name] = (nll(flow.log_prob), taken)
    return same_steps, budgeted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=1.0, help="per timed measurement")
    parser.add_argument("--moons-steps", type=int, default=3000)
    parser.add_argument("--budget", type=float, default=60.0, help="seconds per flowcf flow")
    parser.add_argument("--flows", nargs="*", default=list(FLOWS))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    threads = torch.get_num_threads()
    machine = f"{platform.machine()}, {threads} torch thread(s), torch {torch.__version__}"
    lines = [
        f"# Flow benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"{platform.node()}: {machine}; batch {BATCH}, width {WIDTH}, depth {DEPTH}, "
        f"layers {LAYERS}; libraries interleaved in {BURST * 1000:.0f} ms bursts, "
        f"{args.seconds:g} s each per repeat; median (lowest–highest) of {args.repeats} repeats.",
        "",
        "| flow | dim | flowcf train steps/s | ×zuko | ×nflows "
        "| flowcf log_prob samples/s | ×zuko | ×nflows |",
        "|:--|--:|--:|--:|--:|--:|--:|--:|",
    ]  # fmt: skip
    bounds = [
        "",
        "÷ nflows: flowcf's flow with the same optimizer as nflows (torch's Adam), and as a "
        "ceiling flowcf's flow hand-minimised into one function of its tensors (no nn.Module "
        "calls; fused Adam)",
        "",
        "| flow | dim | flowcf, torch Adam train | hand-minimised train "
        "| hand-minimised log_prob |",
        "|:--|--:|--:|--:|--:|",
    ]  # fmt: skip
    for name in LAYERS:
        for dim in (2, 8):
            runs = throughput(name, dim, args.repeats, args.seconds)
            cells = [name, str(dim), *summary(runs, 0), *summary(runs, 1)]
            lines.append(f"| {' | '.join(cells)} |")
            print(lines[-1], flush=True)
            ceiling = [ratio(runs, i, "hand-minimised", "nflows") for i in (0, 1)]
            cells = [name, str(dim), ratio(runs, 0, "flowcf, torch Adam", "nflows"), *ceiling]
            bounds.append(f"| {' | '.join(cells)} |")
    lines += bounds
    print("\n".join(bounds), flush=True)

    same_steps, budgeted = moons_nll(args.moons_steps, args.budget, args.flows)
    lines += [
        "",
        f"Two moons (noise 0.05, standardised, 8192 train / 8192 test points), RealNVP after "
        f"{args.moons_steps} Adam steps (lr 1e-3): test NLL in nats",
        "",
        "| flowcf | zuko | nflows | flowcf − zuko |",
        "|--:|--:|--:|--:|",
        f"| {same_steps['flowcf']:.3f} | {same_steps['zuko']:.3f} | {same_steps['nflows']:.3f} "
        f"| {same_steps['flowcf'] - same_steps['zuko']:+.3f} |",
        "",
        f"flowcf flows as `model=<name>` configures them (options and objective) trained for "
        f"{args.budget:.0f} s each: test NLL in nats",
        "",
        "| flow | test NLL | steps |",
        "|:--|--:|--:|",
        *(f"| {name} | {v:.3f} | {steps} |" for name, (v, steps) in budgeted.items()),
    ]
    table = "\n".join(lines) + "\n"
    print(table)
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(table)
    print(f"written to {OUTPUT}")


if __name__ == "__main__":
    main()
