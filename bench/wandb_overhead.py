"""W&B's share of run time: the default MLP run with ``tracker=wandb`` (offline) against ``tracker=local``,
both with the run record on, in one process.

Two measures, both printed:
- direct: time spent inside the W&B tracker's own calls (start, log, finish) / the run's wall time. Precise.
- paired: (t_wandb - t_local) / t_wandb over adjacent pairs of whole runs, pair order alternating to cancel
  the VM's drift; includes the indirect cost (W&B's service process competing for the 2 cores). Noisy: this
  VM's speed drifts by a third within minutes, so read its median and quartiles, and the pooled ratio.

    python bench/wandb_overhead.py [--steps 1000] [--repeats 21]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("WANDB_ERROR_REPORTING", "false")

from ablate.cli.compose import compose_config  # noqa: E402
from ablate.config import Config  # noqa: E402
from ablate.record.runner import execute  # noqa: E402
from ablate.record.wandb import tracker as wandb_tracker  # noqa: E402

tracker_seconds = 0.0  # time spent inside the W&B tracker's calls during the current run


def timed(method: Any) -> Any:
    def wrapper(*args: Any) -> Any:
        global tracker_seconds
        tic = time.perf_counter()
        try:
            return method(*args)
        finally:
            tracker_seconds += time.perf_counter() - tic

    return wrapper


for _name in ("start", "log", "finish"):
    setattr(wandb_tracker.WandbTracker, _name, timed(getattr(wandb_tracker.WandbTracker, _name)))


def run_seconds(config: Config) -> tuple[float, float]:
    """Wall time of a whole run (record, trackers start to finish) as a user waits for it, and W&B's part."""
    global tracker_seconds
    tracker_seconds = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        tic = time.perf_counter()
        execute(config, Path(tmp) / "run", "bench", [], {})
        return time.perf_counter() - tic, tracker_seconds


def quartiles(values: list[float]) -> str:
    q1, q2, q3 = statistics.quantiles(values, n=4)
    return f"median {q2 * 100:.1f}% (quartiles {q1 * 100:.1f}% to {q3 * 100:.1f}%)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=21)
    args = parser.parse_args()
    local = compose_config([f"steps={args.steps}", "tracker=local", "tracker.progress=off"])
    wandb = compose_config([f"steps={args.steps}", "tracker=wandb", "tracker.progress=off"])
    first, first_direct = run_seconds(wandb)  # the process's first W&B run starts wandb's service
    run_seconds(local)
    paired, direct, local_s, wandb_s = [], [], [], []
    for i in range(args.repeats):
        if i % 2:
            a = run_seconds(local)[0]
            b, d = run_seconds(wandb)
        else:
            b, d = run_seconds(wandb)
            a = run_seconds(local)[0]
        local_s.append(a)
        wandb_s.append(b)
        paired.append((b - a) / b)
        direct.append(d / b)
    pooled = (sum(wandb_s) - sum(local_s)) / sum(wandb_s)
    print(
        f"default MLP, {args.steps} steps, log_every={wandb.tracker.log_every}, {args.repeats} pairs: "
        f"local {statistics.median(local_s):.2f} s, wandb offline {statistics.median(wandb_s):.2f} s per run\n"
        f"W&B share of run time, direct (inside the tracker): {quartiles(direct)}\n"
        f"W&B share of run time, paired whole runs: {quartiles(paired)}; pooled {pooled * 100:.1f}%\n"
        f"first W&B run of a process: {first_direct:.2f} s inside the tracker (wandb's service starts), "
        f"once per process"
    )


if __name__ == "__main__":
    main()
