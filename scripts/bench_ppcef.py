"""PPCEF's speed where users feel it: the demo's search (``flowcf run data=moons method=ppcef``)
and German credit's seconds per fold (``data=german_credit data.folds=5``), each with validity
and plausibility beside it, and the machine's load.

Models come from the bench's own store (``--store``; trained on the first run, loaded after);
its stored counterfactuals are deleted first, so every search runs. ``seconds`` is the search's
wall-clock time (the ``time`` metric), ``cpu`` the process's CPU seconds over it: on a busy
machine with one torch thread, ``cpu`` is what the search would take on an idle one.

    python scripts/bench_ppcef.py [--threads 1] [--folds 5] [--store DIR] [overrides...]
"""

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import pandas as pd
from hydra import compose, initialize_config_dir

from flowcf.cli import CONFIG_DIR
from flowcf.metrics import compute_metrics
from flowcf.session import Session

GERMAN_FOLDS = 5


def cases(folds: int):
    """(name, overrides) of the demo and of German credit's first ``folds`` folds."""
    yield "demo (moons)", ["data=moons"]
    for i in range(folds):
        yield (
            f"german_credit fold {i}",
            ["data=german_credit", f"data.folds={GERMAN_FOLDS}", f"+data.fold={i}"],
        )


METRICS = ["validity", "plausibility"]


def measure(overrides: list[str], store: Path, run_dir: str) -> dict[str, float]:
    """Seconds, CPU seconds, steps, validity and plausibility of one PPCEF search."""
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(config_name="config", overrides=overrides)
    session = Session(cfg, run_dir)
    _ = session.parts.classifier, session.parts.flow
    shutil.rmtree(store / "counterfactuals", ignore_errors=True)
    cpu = time.process_time()
    cfs = session.counterfactuals("ppcef")
    cpu = time.process_time() - cpu
    scores = compute_metrics(METRICS, session.evaluation("ppcef"))
    steps = cfs.steps.float()
    return {"factuals": len(cfs.x), "seconds": cfs.seconds, "cpu": cpu,
            "mean steps": steps.mean().item(), "max steps": steps.max().item(),
            **{name: scores[name] for name in METRICS}}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--folds", type=int, default=GERMAN_FOLDS, help="German credit folds")
    parser.add_argument("--store", type=Path, default=Path("outputs/bench/store"))
    parser.add_argument(
        "overrides", nargs="*", help="overrides for every case, e.g. method.lr=1e-2"
    )
    args = parser.parse_args()
    common = ["method=ppcef", f"threads={args.threads}", "device=cpu", "progress=false",
              f"paths.store={args.store}", *args.overrides]  # fmt: skip
    print(f"load average before: {' '.join(f'{v:.2f}' for v in os.getloadavg())} "
          f"on {os.cpu_count()} cores, {args.threads} torch thread(s)")  # fmt: skip
    header = ["case", "factuals", "seconds", "cpu", "mean steps", "max steps", *METRICS]
    print("| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, overrides in cases(args.folds):
            rows[name] = row = measure([*overrides, *common], args.store, tmp)
            cells = [f"{row[k]:.4g}" for k in header[1:]]
            print(f"| {name} | " + " | ".join(cells) + " |", flush=True)
    folds = pd.DataFrame([row for name, row in rows.items() if name.startswith("german")])
    if len(folds):
        print(f"german_credit per fold: {folds.seconds.mean():.1f} ± {folds.seconds.std():.1f} s, "
              f"cpu {folds.cpu.mean():.1f} ± {folds.cpu.std():.1f} s")  # fmt: skip
    print(f"load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
