"""A 12-run study of the default MLP: Hydra's sequential launcher against ``hydra/launcher=local`` (2 workers).

    python bench/launchers.py [--runs 12] [--repeats 2] [--workers 2] [--steps 1000]

Each variant is the real command a user types (``python -m ablate -m seed=0,...,11``) in a fresh directory,
timed from process start to exit; variants alternate to cancel the VM's drift. Printed: wall time of each
and the ratio local / sequential (below 1: parallel is faster).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def study_seconds(runs: int, launcher: list[str], steps: int = 1000) -> float:
    seeds = ",".join(str(s) for s in range(runs))
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true", "WANDB_ERROR_REPORTING": "false"}
    with tempfile.TemporaryDirectory() as tmp:
        tic = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "ablate", "-m", f"seed={seeds}", f"steps={steps}", "tracker.progress=off", "study=b"]
            + launcher,
            cwd=tmp,
            env={**env, "PYTHONPATH": str(REPO)},
            capture_output=True,
            text=True,
        )
        seconds = time.perf_counter() - tic
    if done.returncode != 0:
        raise SystemExit(f"study failed: {done.stderr[-2000:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=12)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--steps", type=int, default=1000)
    args = parser.parse_args()
    local = ["hydra/launcher=local", f"hydra.launcher.n_jobs={args.workers}"]
    sequential_s, local_s = [], []
    for i in range(args.repeats):
        if i % 2:
            local_s.append(study_seconds(args.runs, local, args.steps))
            sequential_s.append(study_seconds(args.runs, [], args.steps))
        else:
            sequential_s.append(study_seconds(args.runs, [], args.steps))
            local_s.append(study_seconds(args.runs, local, args.steps))
        print(f"repeat {i}: sequential {sequential_s[-1]:.1f} s, local x{args.workers} {local_s[-1]:.1f} s", flush=True)
    seq, par = statistics.median(sequential_s), statistics.median(local_s)
    print(
        f"{args.runs}-run study of the default MLP ({args.steps} steps, W&B offline), {os.cpu_count()} cores: "
        f"sequential {seq:.1f} s, local with {args.workers} workers {par:.1f} s, ratio local/sequential {par / seq:.2f}"
    )


if __name__ == "__main__":
    main()
