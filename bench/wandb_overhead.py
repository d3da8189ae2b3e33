"""W&B's share of run time: the default MLP run with ``tracker=wandb`` (offline) against ``tracker=local``,
both with the run record on, in one process, alternating. Share = (t_wandb - t_local) / t_wandb.

    python bench/wandb_overhead.py [--steps 1000] [--repeats 7]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("WANDB_ERROR_REPORTING", "false")

from ablate.cli import compose_config  # noqa: E402
from ablate.config import Config  # noqa: E402
from ablate.runner import execute  # noqa: E402


def make_config(*overrides: str) -> Config:
    return compose_config(["tracker.progress=off", *overrides])


def run_seconds(config: Config) -> float:
    """Wall time of a whole run (record, trackers start to finish), as a user waits for it."""
    with tempfile.TemporaryDirectory() as tmp:
        tic = time.perf_counter()
        execute(config, Path(tmp) / "run", "bench", [], {})
        return time.perf_counter() - tic


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    local = make_config(f"steps={args.steps}", "tracker=local")
    wandb = make_config(f"steps={args.steps}", "tracker=wandb")
    run_seconds(local), run_seconds(wandb)  # warm-up: imports, wandb's service process
    shares, local_times, wandb_times = [], [], []
    for _ in range(args.repeats):
        a, b = run_seconds(local), run_seconds(wandb)
        local_times.append(a)
        wandb_times.append(b)
        shares.append((b - a) / b)
    shares.sort()
    print(
        f"default MLP, {args.steps} steps, log_every={wandb.tracker.log_every}: "
        f"local {statistics.median(local_times):.2f} s, "
        f"wandb offline {statistics.median(wandb_times):.2f} s per run; W&B share of run time: median "
        f"{statistics.median(shares) * 100:.1f}% (range {shares[0] * 100:.1f}% to {shares[-1] * 100:.1f}%)"
    )


if __name__ == "__main__":
    main()
