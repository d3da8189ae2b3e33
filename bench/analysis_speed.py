"""Speed and memory of ``analysis.load.load_study`` + a typical aggregation, against plain ``pandas.read_json``.

Writes a synthetic study of realistic shape into a temporary directory: 1000 runs (4 optimizers x 5 warmup
lengths x 50 seeds), each with ``config.yaml``, ``result.json`` and a ``metrics.jsonl`` of 1001 lines (train
metrics every step, ``train/acc``/``opt/*`` every 25 steps, six ``eval/*`` metrics every 50 steps and at the
final step); about 5% of the runs diverge. Then, each in a fresh process so that peak memory is its own:

- ``ablate``: ``load_study`` + ``aggregate`` (mean/median/IQM with 2000-resample bootstraps per cell) +
  ``paired_effects`` against ``warmup=0`` + ``default_target``/``time_to_target``/``median_time_to_target``
  + ``divergence_rate``;
- ``baseline``: ``pandas.read_json(path, lines=True)`` of every ``metrics.jsonl``, concatenated (reading only).

Repeats alternate the two; the figures are medians. Times include each side's imports (pandas; and scipy for
ablate). Peak memory is the process's ``ru_maxrss`` (includes the ~100 MB of the interpreter and its imports).

Recorded 2026-11-26, this 2-core VM, 1000 runs x 1001 lines (105 MB of metrics.jsonl), 3 repeats: ablate
(load + aggregation) median 4.00 s, peak 279 MB; read_json alone 4.17 s, peak 281 MB; ratio 0.96 (0.94-0.96).

    python bench/analysis_speed.py [--runs 1000] [--steps 1000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import math
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop")
WARMUPS = (0, 50, 100, 200, 500)
EVAL_KEYS = ("eval/loss", "eval/acc", "eval/early/loss", "eval/early/acc", "eval/rest/loss", "eval/rest/acc")


def metrics_lines(rng: random.Random, steps: int, eval_every: int, diverged_step: int | None) -> list[str]:
    """The ``metrics.jsonl`` lines of one synthetic run: a loss decaying from 2.3 towards 0.3, with noise."""
    lines = []
    last = steps if diverged_step is None else diverged_step
    for step in range(last + 1):
        loss = 0.3 + 2.0 * math.exp(-step / (steps / 5)) + rng.gauss(0, 0.05)
        row: dict[str, float | None] = {"step": step}
        if step < steps:
            row.update({"train/loss": loss, "opt/lr": 1e-3, "sys/step_time": 5e-4 + rng.random() * 1e-4})
            if step % 25 == 0:
                row.update({"train/acc": 1 - loss / 2.5, "opt/grad_norm": rng.random(), "opt/update_ratio": 1e-3})
        if step == diverged_step:
            row["train/loss"] = None  # NaN at divergence is written as null
        elif step % eval_every == 0 or step == steps:
            row.update({key: loss + rng.gauss(0, 0.02) for key in EVAL_KEYS})
        lines.append(json.dumps(row))
    return lines


def write_study(study_dir: Path, n_runs: int, steps: int, eval_every: int = 50) -> None:
    """A synthetic study of ``n_runs`` run records (factors optimizer x warmup x seed)."""
    rng = random.Random(0)
    cells = [(optimizer, warmup) for optimizer in OPTIMIZERS for warmup in WARMUPS]
    factors = ["optimizer", "warmup", "seed"]
    study_dir.mkdir(parents=True)
    (study_dir / "study.json").write_text(json.dumps({"multirun_id": "bench", "factors": factors}))
    for index in range(n_runs):
        optimizer, warmup = cells[index % len(cells)]
        seed = index // len(cells)
        diverged_step = rng.randrange(10, steps) if rng.random() < 0.05 else None
        run_dir = study_dir / str(index)
        run_dir.mkdir(parents=True)
        config = {
            "model": {"name": "mlp", "hidden_sizes": [128, 128], "activation": "relu"},
            "data": {"name": "clusters", "seed": 0, "n_train": 8192, "n_eval": 2048},
            "optimizer": {"name": optimizer, "default_lr": 0.001, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8},
            "schedule": {"name": "constant"},
            "tracker": {"name": "local", "progress": "off"},
            "skew": {"name": "none", "steps": 200, "group": 0, "strength": 0.75},
            "probes": {"name": "none"},
            "warmup": warmup,
            "warmup_shape": "linear",
            "warmup_start_fraction": 0.1,
            "lr": 0.001,
            "steps": steps,
            "batch_size": 64,
            "seed": seed,
            "eval_every": eval_every,
        }
        (run_dir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        lines = metrics_lines(rng, steps, eval_every, diverged_step)
        (run_dir / "metrics.jsonl").write_text("\n".join(lines) + "\n")
        final = json.loads(lines[-1]).get("eval/loss")
        result = {
            "run_id": f"{index:016x}",
            "label": f"#{index}",
            "overrides": [f"optimizer={optimizer}", f"warmup={warmup}", f"seed={seed}"],
            "study": {"multirun_id": "bench", "factors": factors},
            "warmup_steps": warmup,
            "status": "completed" if diverged_step is None else "diverged",
            "summary": {"final_eval_loss": final, "steps_completed": steps, "diverged_step": diverged_step},
            "provenance": {"git_commit": "0" * 40, "host": "bench", "device": "cpu"},
            "started_at": "2026-11-26T10:00:00+00:00",
            "ended_at": "2026-11-26T10:00:05+00:00",
            "wall_time_s": 5.0,
        }
        (run_dir / "result.json").write_text(json.dumps(result))


def ablate_side(study_dir: Path) -> None:
    """``load_study`` and the aggregations a report makes."""
    from analysis import stats
    from analysis.load import load_study

    study = load_study(study_dir)
    by = study.cell_factors
    stats.aggregate(study.runs, "final_eval_loss", by)
    stats.paired_effects(study.runs, "final_eval_loss", by, "warmup=0")
    target = stats.default_target(study.runs, study.history, "eval/loss", by)
    times = stats.time_to_target(study.runs, study.history, "eval/loss", target, by)
    stats.median_time_to_target(times, by)
    stats.divergence_rate(study.runs, by)


def baseline_side(study_dir: Path) -> None:
    """Only reading: ``pandas.read_json(lines=True)`` per run, concatenated."""
    import pandas as pd

    frames = [pd.read_json(path, lines=True) for path in sorted(study_dir.glob("*/metrics.jsonl"))]
    pd.concat(frames, ignore_index=True)


def child(side: str, study_dir: Path) -> None:
    """Run one side in this process; print its seconds and peak resident memory (MB) as JSON."""
    sys.path.insert(0, str(REPO))
    start = time.perf_counter()
    ablate_side(study_dir) if side == "ablate" else baseline_side(study_dir)
    seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB
    print(json.dumps({"seconds": seconds, "peak_mb": peak_mb}))


def measure(side: str, study_dir: Path) -> dict[str, float]:
    command = [sys.executable, __file__, "--child", side, "--study", str(study_dir)]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--child", choices=("ablate", "baseline"))
    parser.add_argument("--study", type=Path)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.study)
        return
    with tempfile.TemporaryDirectory() as tmp:
        study_dir = Path(tmp) / "study"
        start = time.perf_counter()
        write_study(study_dir, args.runs, args.steps)
        size_mb = sum(p.stat().st_size for p in study_dir.rglob("metrics.jsonl")) / 2**20
        print(
            f"wrote {args.runs} runs x {args.steps + 1} lines ({size_mb:.0f} MB) in {time.perf_counter() - start:.1f} s"
        )
        results: dict[str, list[dict[str, float]]] = {"ablate": [], "baseline": []}
        for _ in range(args.repeats):
            for side in ("baseline", "ablate"):
                results[side].append(measure(side, study_dir))
    for side, runs in results.items():
        seconds = statistics.median(r["seconds"] for r in runs)
        peak = max(r["peak_mb"] for r in runs)
        each = [round(r["seconds"], 2) for r in runs]
        print(f"{side:8s}: median {seconds:.2f} s (each repeat: {each}), peak memory {peak:.0f} MB")
    ratios = [a["seconds"] / b["seconds"] for a, b in zip(results["ablate"], results["baseline"], strict=True)]
    each = [round(r, 2) for r in ratios]
    print(f"ratio ablate / read_json: median {statistics.median(ratios):.2f} (each repeat: {each})")


if __name__ == "__main__":
    main()
