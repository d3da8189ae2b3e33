"""Loop throughput of the stacked loop against ablate's solo loop, and against the batched-matmul ceiling.

For M = 1, 4, 16, 64 members of the default MLP (32 -> 128 -> 128 -> 10) on the default clusters data with Adam,
members differing in seed, lr and warmup: member-steps per second of

* the solo loop: ``ablate.run.train.run_loop``, each member trained on its own, one after another;
* the stacked loop: ``ablate.run.stacked.loop.train_stack`` with all M members at once;
* the ceiling: only the batched matmuls of one stacked step at the same shapes (forward, and backward for the
  weights and the inputs), nothing else -- what a stacked step would cost if the loop, the optimizer, the loss and
  the bookkeeping were free.

Both loops write every member's run record (``metrics.jsonl``, flushed per line) as real runs do; build time is
excluded from both. Solo and stacked alternate over repeats so machine noise hits both alike; medians.

    python bench/stacked.py [--steps 300] [--repeats 3] [--members 1 4 16 64] [--device cpu|cuda] [--threads N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ablate.cli.compose import compose_config  # noqa: E402
from ablate.config import Config  # noqa: E402
from ablate.record.tracking import RunRecord  # noqa: E402
from ablate.run.data.dataset import Dataset  # noqa: E402
from ablate.run.stacked.loop import run_stack, shared_dataset  # noqa: E402
from ablate.run.train import build, run_loop  # noqa: E402


def member_configs(m: int, steps: int, device: str, threads: int) -> list[Config]:
    """M members of one stack: seeds 0..M-1, rates spread over 3e-4..3e-3, warmup 0..200."""
    rates = [3e-4 * 10 ** (i / max(1, m - 1)) for i in range(m)]
    return [
        compose_config(
            [
                "tracker=local",
                "tracker.progress=off",
                f"steps={steps}",
                f"seed={i}",
                f"lr={rates[i]}",
                f"warmup={(i * 37) % 200 if steps > 200 else 0}",
                f"device={device}",
                f"cpu_threads={threads}",
            ]
        )
        for i in range(m)
    ]


def records(tmp: Path, m: int) -> list[RunRecord]:
    out = []
    for i in range(m):
        record = RunRecord(tmp / str(i))
        record.start({})
        out.append(record)
    return out


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def solo_seconds(configs: list[Config], device: torch.device) -> float:
    """Wall seconds of the solo loop over every member, one after another (build excluded)."""
    total = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for config, record in zip(configs, records(Path(tmp), len(configs)), strict=True):
            parts = build(config, device)
            sync(device)
            tic = time.perf_counter()
            run_loop(config, parts, record.log)
            sync(device)
            total += time.perf_counter() - tic
            record.finish({})
    return total


def stacked_seconds(configs: list[Config], device: torch.device) -> float:
    """Wall seconds of the stacked loop over all members at once (build excluded)."""
    with tempfile.TemporaryDirectory() as tmp:
        recs = records(Path(tmp), len(configs))
        datasets: dict[str, Dataset] = {}
        parts = [build(config, device, shared_dataset(config, device, datasets)) for config in configs]
        sync(device)
        tic = time.perf_counter()
        run_stack(configs, parts, [r.log for r in recs], lambda i, outcome: None)
        sync(device)
        elapsed = time.perf_counter() - tic
        for r in recs:
            r.finish({})
    return elapsed


def ceiling_seconds(m: int, steps: int, device: torch.device, batch: int = 64) -> float:
    """Seconds for ``steps`` stacked steps of batched matmuls only, at the default MLP's shapes."""
    widths = [32, 128, 128, 10]
    weights = [torch.randn(m, widths[i + 1], widths[i], device=device) for i in range(3)]
    x = torch.randn(m, batch, widths[0], device=device)
    outs = [torch.randn(m, batch, w, device=device) for w in widths[1:]]
    ins = [x, outs[0], outs[1]]
    sync(device)
    tic = time.perf_counter()
    for _ in range(steps):
        h = x
        for w in weights:  # forward: h @ W^T
            h = torch.bmm(h, w.transpose(1, 2))
        for i, w in enumerate(weights):  # backward: dW = g^T @ input, and dX = g @ W (not for the first layer)
            torch.bmm(outs[i].transpose(1, 2), ins[i])
            if i > 0:
                torch.bmm(outs[i], w)
    sync(device)
    return time.perf_counter() - tic


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--members", type=int, nargs="+", default=[1, 4, 16, 64])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(f"{device}, {args.threads} thread(s), {args.steps} steps per member, torch {torch.__version__}")
    print(
        f"{'M':>3} {'solo steps/s':>13} {'stacked member-steps/s':>23} {'ratio':>6} {'ceiling':>9} {'of ceiling':>10}"
    )
    for m in args.members:
        configs = member_configs(m, args.steps, args.device, args.threads)
        solo, stacked, ceiling = [], [], []
        for _ in range(args.repeats):  # alternate: noise hits both alike
            solo.append(m * args.steps / solo_seconds(configs, device))
            stacked.append(m * args.steps / stacked_seconds(configs, device))
            ceiling.append(m * args.steps / ceiling_seconds(m, args.steps, device))
        s, k, c = statistics.median(solo), statistics.median(stacked), statistics.median(ceiling)
        print(f"{m:>3} {s:>13.0f} {k:>23.0f} {k / s:>6.2f} {c:>9.0f} {k / c:>10.2f}", flush=True)


if __name__ == "__main__":
    main()
