"""Batched PPCEF against a per-factual loop of the same code, on two moons.

Both explain the same factuals with the same trained classifier and flow, in one process with the
same thread count; the script prints seconds for each and their ratio. Absolute times on shared
machines are noisy, so read the ratio.

    python scripts/bench_ppcef.py [--factuals 1000] [--loop-factuals 1000] [--threads 2]

``--loop-factuals`` below ``--factuals`` times the loop on that many factuals and scales its time
up linearly (the loop's cost is a sum of independent per-factual searches); the output says so.
"""

import argparse
import tempfile
import time

import torch
from hydra import compose, initialize_config_dir

from flowcf.checks import PIPELINE
from flowcf.cli import CONFIG_DIR
from flowcf.config import options
from flowcf.methods import METHODS
from flowcf.session import Session


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--factuals", type=int, default=1000)
    parser.add_argument("--loop-factuals", type=int, default=50)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    n_samples = 5 * args.factuals  # the test split is a fifth of the data
    with tempfile.TemporaryDirectory() as tmp:
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
            cfg = compose(
                config_name="config",
                overrides=[
                    "data=moons",
                    "method=ppcef",
                    f"data.n_samples={n_samples}",
                    "factuals.class=null",
                    f"factuals.limit={args.factuals}",
                    f"threads={args.threads}",
                    "device=cpu",
                    "progress=false",
                    f"paths.store={tmp}/store",
                ],
            )
        session = Session(cfg, tmp)
        x, y, y_target = session.factuals(cfg.method.target)
        method = METHODS.build(
            cfg.method.name,
            session.setting(None),
            **options(cfg.method, *PIPELINE),
            progress=False,
        )

        start = time.perf_counter()
        batched = method.explain(x, y, y_target)
        batched_seconds = time.perf_counter() - start

        loop = min(args.loop_factuals, len(x))
        start = time.perf_counter()
        singles = [
            method.explain(x[i : i + 1], y[i : i + 1], y_target[i : i + 1]) for i in range(loop)
        ]
        loop_seconds = (time.perf_counter() - start) * len(x) / loop

    same = torch.cat([s.x_cf for s in singles]).sub(batched.x_cf[:loop]).abs().max().item()
    scaled = "" if loop == len(x) else f" (timed on {loop}, scaled to {len(x)})"
    print(
        f"PPCEF on moons, {len(x)} factuals, {torch.get_num_threads()} threads, "
        f"max_steps={cfg.method.max_steps}"
    )
    print(
        f"  batched:            {batched_seconds:8.2f} s  "
        f"(mean steps {batched.steps.float().mean():.0f}, max {batched.steps.max()})"
    )
    print(f"  per-factual loop:   {loop_seconds:8.2f} s{scaled}")
    print(f"  speed-up:           {loop_seconds / batched_seconds:8.1f}x")
    print(f"  max |batched - loop| over the looped factuals: {same:.2e}")


if __name__ == "__main__":
    main()
