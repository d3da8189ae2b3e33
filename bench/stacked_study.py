"""A 64-run study end to end, stacked against the sequential launcher, and the W&B share of the stacked study.

The study: the default MLP on the default clusters data with Adam, 1000 steps, 16 seeds x 4 rates (64 runs), W&B
offline on, timed from the command to its ``summary.csv`` (each a fresh ``python -m ablate -m`` process):

* ``sequential``: Hydra's basic launcher as ablate configures it (one run after another, in one process);
* ``stacked``: ``hydra/launcher=stacked`` (one stack of 64 members);
* ``stacked, no W&B``: the same with ``tracker=local``. The W&B share of the stacked study is
  ``(stacked - stacked without W&B) / stacked``: the wall time W&B adds, whatever process it is spent in.

    python bench/stacked_study.py [--steps 1000] [--seeds 16] [--repeats 1] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def study_seconds(launcher: list[str], tracker: str, steps: int, seeds: int, device: str, workdir: Path) -> float:
    """Wall seconds of one study command, from start to its summary.csv; the study directory is removed after."""
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true", "WANDB_ERROR_REPORTING": "false"}
    command = [
        sys.executable,
        "-m",
        "ablate",
        "-m",
        *launcher,
        f"seed=range({seeds})",
        "lr=3e-4,1e-3,3e-3,1e-2",
        f"steps={steps}",
        f"tracker={tracker}",
        "tracker.progress=off",
        f"device={device}",
        "study=bench",
        "--yes",
    ]
    tic = time.perf_counter()
    done = subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - tic
    summary = workdir / "outputs/studies/bench/summary.csv"
    if done.returncode != 0 or not summary.exists():
        raise SystemExit(f"study failed ({done.returncode}):\n{done.stderr[-2000:]}")
    runs = len(summary.read_text().splitlines()) - 1
    assert runs == 4 * seeds, f"{runs} runs in summary.csv"
    shutil.rmtree(workdir / "outputs")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--seeds", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    variants = {
        "sequential": ([], "wandb"),
        "stacked": (["hydra/launcher=stacked"], "wandb"),
        "stacked, no W&B": (["hydra/launcher=stacked"], "local"),
    }
    seconds: dict[str, list[float]] = {name: [] for name in variants}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeats):  # alternate: noise hits every variant alike
            for name, (launcher, tracker) in variants.items():
                seconds[name].append(study_seconds(launcher, tracker, args.steps, args.seeds, args.device, Path(tmp)))
                print(f"  {name}: {seconds[name][-1]:.1f} s", flush=True)
    med = {name: statistics.median(values) for name, values in seconds.items()}
    runs = 4 * args.seeds
    print(f"{runs} runs x {args.steps} steps on {args.device}, W&B offline; medians of {args.repeats}")
    ratio = med["sequential"] / med["stacked"]
    print(f"sequential {med['sequential']:.1f} s, stacked {med['stacked']:.1f} s: {ratio:.2f}x")
    share = (med["stacked"] - med["stacked, no W&B"]) / med["stacked"]
    print(f"stacked without W&B {med['stacked, no W&B']:.1f} s: W&B share of the stacked study {share:.1%}")


if __name__ == "__main__":
    main()
