"""Per-step cost of ablate's training loop against a minimal hand-written PyTorch loop, in one process.

Both train the default MLP on the default clusters data with Adam for the same number of steps, from the
same initialisation and batch order, and evaluate on the held-out split at the same steps. ablate's loop runs
as a real run does (``ablate.run.train.train`` with the local run record writing ``metrics.jsonl`` and every
default metric); the baseline is the five lines every PyTorch tutorial has plus the same evaluation. Runs
alternate (baseline, ablate, baseline, ...) so machine noise hits both alike; medians over repeats.

    python bench/overhead.py [--steps 2000] [--repeats 15] [--threads N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ablate.cli.compose import compose_config  # noqa: E402
from ablate.config import Config  # noqa: E402
from ablate.record.tracking import RunRecord, Trackers  # noqa: E402
from ablate.run.train import build, run_loop  # noqa: E402

CPU = torch.device("cpu")


def make_config(*overrides: str) -> Config:
    return compose_config(["tracker.progress=off", *overrides])


def minimal_loop(config: Config) -> float:
    """Seconds per step of the plain loop: batch, forward, loss, zero_grad, backward, step (+ evaluation)."""
    parts = build(config, CPU)  # same data, init, optimizer and batch order as ablate's run
    model, opt, data, sampler = parts.model, parts.optimizer, parts.data, parts.sampler
    tic = time.perf_counter()
    for step in range(config.steps):
        if step % config.eval_every == 0:
            with torch.no_grad():
                logits = model(data.eval_x)
                F.cross_entropy(logits, data.eval_y).item(), (logits.argmax(1) == data.eval_y).float().mean().item()
        idx = sampler.batch(step)
        loss = F.cross_entropy(model(data.train_x[idx]), data.train_y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return (time.perf_counter() - tic) / config.steps


def ablate_loop(config: Config) -> float:
    """Seconds per step of ablate's loop (``ablate.run.train.run_loop``) with the run record on."""
    parts = build(config, CPU)
    with tempfile.TemporaryDirectory() as tmp:
        record = RunRecord(Path(tmp))
        record.start({})
        trackers = Trackers([record])
        tic = time.perf_counter()
        run_loop(config, parts, trackers.log)
        elapsed = time.perf_counter() - tic
        record.finish({})
    return elapsed / config.steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    variants = {
        "defaults (metrics_every=25)": make_config(f"steps={args.steps}"),
        "metrics_every=10": make_config(f"steps={args.steps}", "metrics_every=10"),
        "metrics_every=1": make_config(f"steps={args.steps}", "metrics_every=1"),
    }
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.steps} steps x {args.repeats} repeats")
    for name, config in variants.items():
        minimal_loop(config), ablate_loop(config)  # warm-up: first-call costs of torch kernels
        base, ours = [], []
        for _ in range(args.repeats):
            base.append(minimal_loop(config))
            ours.append(ablate_loop(config))
        # Each ratio pairs runs adjacent in time, so both saw the same machine state; report their spread.
        ratios = sorted(a / b for a, b in zip(ours, base, strict=True))
        q1, q3 = ratios[len(ratios) // 4], ratios[(3 * len(ratios)) // 4]
        print(
            f"{name:<28} minimal {statistics.median(base) * 1e6:6.1f} us/step, ablate "
            f"{statistics.median(ours) * 1e6:6.1f} us/step | paired ratio median {statistics.median(ratios):.3f} "
            f"(quartiles {q1:.3f}-{q3:.3f})"
        )


if __name__ == "__main__":
    main()
