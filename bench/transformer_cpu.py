"""How fast and how well the small Transformer learns the sort task on CPU: used to choose its defaults.

For each norm position (pre-LN, post-LN) and each warmup length, trains ``ablate.run.models.nets.Transformer`` on
``ablate.run.data.sequence.make_sort_task`` with Adam (betas 0.9/0.999), linear warmup ``lr(t) = p min(1, (t+1)/W)``
then constant (ablate's convention), batch 64, ablate's batch order, for ``--steps`` updates; then prints the
wall time of the training steps, steps/s, the final training loss and the held-out token accuracy of the final
parameters against two baselines: chance ``1/V`` and the best per-position constant guess (the most frequent
training target token at each position, which knows the output is sorted but not the input).

    python bench/transformer_cpu.py [--steps 1000] [--lr 1e-3] [--warmups 0,100] [--norms pre,post]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ablate.run.data.samplers import IIDBatchSampler  # noqa: E402
from ablate.run.data.sequence import make_sort_task  # noqa: E402
from ablate.run.models.nets import Transformer  # noqa: E402


def positional_mode_accuracy(train_y: torch.Tensor, eval_y: torch.Tensor, vocab_size: int) -> float:
    """Held-out token accuracy of predicting, at each position, the most frequent training target there."""
    counts = torch.zeros(train_y.shape[1], vocab_size, dtype=torch.long)
    counts.scatter_add_(1, train_y.T, torch.ones_like(train_y.T))
    mode = counts.argmax(1)  # [seq_len]
    return (eval_y == mode).float().mean().item()


@torch.no_grad()
def token_accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    correct = (model(x).argmax(-1) == y).float().mean().item()
    model.train()
    return correct


def train_one(args: argparse.Namespace, norm: str, warmup: int) -> dict[str, Any]:
    data = make_sort_task(args.data_seed, args.n_train, args.n_eval, args.seq_len, args.vocab_size, args.n_groups)
    torch.manual_seed(args.seed)
    model = Transformer(args.vocab_size, args.seq_len, args.d_model, args.n_heads, args.n_layers, norm)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    sampler = IIDBatchSampler(data.n_train, args.batch_size, args.seed)
    losses: list[float] = []
    curve: list[str] = []
    eval_time = 0.0
    tic = time.perf_counter()
    for step in range(args.steps):
        if args.eval_every and step > 0 and step % args.eval_every == 0:
            toc = time.perf_counter()
            curve.append(f"{step}:{token_accuracy(model, data.eval_x, data.eval_y):.3f}")
            eval_time += time.perf_counter() - toc
        lr = args.lr * min(1.0, (step + 1) / warmup) if warmup > 0 else args.lr
        for group in opt.param_groups:
            group["lr"] = lr
        idx = sampler.batch(step)
        logits = model(data.train_x[idx])
        loss = F.cross_entropy(logits.flatten(0, -2), data.train_y[idx].flatten())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
        if not math.isfinite(losses[-1]):
            break
    wall = time.perf_counter() - tic - eval_time
    model.eval()
    with torch.no_grad():
        correct = model(data.eval_x).argmax(-1) == data.eval_y
    tail = losses[-50:]
    return {
        "wall_s": wall,
        "steps_per_s": len(losses) / wall,
        "first_loss": losses[0],
        "final_loss": sum(tail) / len(tail),
        "max_loss": max(losses),
        "token_acc": correct.float().mean().item(),
        "seq_acc": correct.all(1).float().mean().item(),
        "curve": " ".join(curve),
        "baseline": positional_mode_accuracy(data.train_y, data.eval_y, args.vocab_size),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--warmups", default="0,100", help="comma-separated warmup lengths (steps)")
    parser.add_argument("--norms", default="pre,post", help="comma-separated norm positions")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seq-len", type=int, default=12)
    parser.add_argument("--vocab-size", type=int, default=16)
    parser.add_argument("--n-groups", type=int, default=4)
    parser.add_argument("--n-train", type=int, default=8192)
    parser.add_argument("--n-eval", type=int, default=1024)
    parser.add_argument("--d-model", type=int, default=64)
    parser.add_argument("--n-heads", type=int, default=2)
    parser.add_argument("--n-layers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0, help="initialisation and batch order")
    parser.add_argument("--data-seed", type=int, default=0)
    parser.add_argument("--eval-every", type=int, default=0, help="also print held-out accuracy every N steps")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; sort task seq_len={args.seq_len} "
        f"vocab={args.vocab_size} groups={args.n_groups} n_train={args.n_train} n_eval={args.n_eval}; "
        f"d_model={args.d_model} heads={args.n_heads} layers={args.n_layers}; Adam lr={args.lr} "
        f"batch={args.batch_size} steps={args.steps}; chance 1/V = {1 / args.vocab_size:.4f}"
    )
    for norm in args.norms.split(","):
        for warmup in (int(w) for w in args.warmups.split(",")):
            r = train_one(args, norm, warmup)
            print(
                f"{norm:>4}-LN warmup={warmup:<4} {r['wall_s']:6.1f} s {r['steps_per_s']:6.1f} steps/s  "
                f"train loss {r['first_loss']:.3f} -> {r['final_loss']:.3f} (max {r['max_loss']:.3f})  "
                f"eval token acc {r['token_acc']:.4f} seq acc {r['seq_acc']:.4f} "
                f"(chance {1 / args.vocab_size:.4f}, per-position mode {r['baseline']:.4f})",
                flush=True,
            )
            if r["curve"]:
                print(f"    eval token acc by step: {r['curve']}", flush=True)


if __name__ == "__main__":
    main()
