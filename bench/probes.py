"""Cost of each probe: time per training step with it on (at interval 1, i.e. every step) against the same run
with every probe off, in one process, alternating. The cost of a probe at interval ``k`` is ``1 + (ratio - 1)/k``.

    python bench/probes.py [--steps 60] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from overhead import ablate_loop  # noqa: E402  (same directory: times ablate's loop with the record on)

from ablate.cli.compose import compose_config  # noqa: E402
from ablate.config import Config  # noqa: E402

CPU = torch.device("cpu")
PROBES = {
    "per-layer update ratio": ["probes.update_ratio_every=1"],
    "second moment (stats + error, 8 batches)": ["probes.second_moment_every=1"],
    "sharpness (20 HVPs, 1024 examples)": ["probes.sharpness_every=1"],
    "dead ReLU share (held-out split)": ["probes.dead_relu_every=1"],
}


def make_config(*overrides: str) -> Config:
    return compose_config(["tracker.progress=off", *overrides])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--optimizer", default="adam")
    args = parser.parse_args()
    common = [f"steps={args.steps}", f"optimizer={args.optimizer}", f"eval_every={args.steps}"]
    base_config = make_config(*common)
    ablate_loop(base_config)  # warm-up
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, optimizer={args.optimizer}, default MLP")
    for name, overrides in PROBES.items():
        config = make_config(*common, *overrides)
        ablate_loop(config)
        ratios, base_times, probe_times = [], [], []
        for _ in range(args.repeats):
            b, p = ablate_loop(base_config), ablate_loop(config)
            ratios.append(p / b)
            base_times.append(b)
            probe_times.append(p)
        extra_ms = (statistics.median(probe_times) - statistics.median(base_times)) * 1e3
        print(f"{name:<42} every step: x{statistics.median(ratios):6.1f} the step time (+{extra_ms:6.2f} ms per use)")


if __name__ == "__main__":
    main()
