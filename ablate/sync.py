"""``python -m ablate.sync <study dir>``: upload a study's offline W&B runs with ``wandb sync``.

Studies usually run where there is no network; this uploads every offline run under a study directory,
several at a time (``--jobs``), skipping runs W&B already marked as synced (``run-<id>.wandb.synced``), each
``wandb sync`` bounded by ``--timeout`` seconds. Log in first (``wandb login``); the runs appear in the project
of their config, grouped by study. Exit status 1 if any upload failed.

Every attempt of a run is its own offline run with its own W&B id (``<run_id>-<time>-<hex>``, see
``ablate.record.wandb.tracker``): a run killed and re-run leaves two folders in ``<run dir>/wandb/`` (its earlier
record goes to ``superseded/``, its W&B folder stays), and both are uploaded, as two W&B runs with the same
``run_id`` in their config. Runs that fell back to offline because W&B was unreachable
(``wandb_offline.json`` in the study) are uploaded like any other. Folders that share one W&B id (the study's
analysis run, updated by each analysis; attempts recorded before each attempt had its own id) are uploaded one
after another in the order they were written, never at the same time.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path


def offline_runs(study_dir: Path) -> list[Path]:
    """Every offline W&B run directory under ``study_dir`` (in run order)."""
    return sorted(p for p in study_dir.rglob("offline-run-*") if p.is_dir() and any(p.glob("run-*.wandb")))


def is_synced(run: Path) -> bool:
    return any(run.glob("run-*.wandb.synced"))


def wandb_id(run: Path) -> str:
    """The W&B id of an offline run directory, from its ``run-<id>.wandb`` file."""
    return sorted(run.glob("run-*.wandb"))[0].name[len("run-") : -len(".wandb")]


def by_wandb_id(runs: list[Path]) -> list[list[Path]]:
    """``runs`` grouped by W&B id, each group in the order it was written (``offline-run-<YYYYmmdd_HHMMSS>-``)."""
    groups: dict[str, list[Path]] = {}
    for run in runs:
        groups.setdefault(wandb_id(run), []).append(run)
    return [
        sorted(group, key=lambda r: (r.name[len("offline-run-") :].split("-")[0], str(r))) for group in groups.values()
    ]


def sync_one(run: Path, timeout_s: float) -> tuple[Path, str | None]:
    """``wandb sync <run>``; returns the run and None, or the first line of what went wrong."""
    try:
        done = subprocess.run(
            ["wandb", "sync", str(run)],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            env={**os.environ, "WANDB_SILENT": "false"},
        )
    except subprocess.TimeoutExpired:
        return run, f"no answer from W&B within {timeout_s:g} s (is the server reachable? try --timeout)"
    except FileNotFoundError:
        return run, "the wandb command is not installed (pip install wandb)"
    if done.returncode != 0:
        lines = [line for line in (done.stderr + done.stdout).splitlines() if line.strip()]
        return run, lines[-1] if lines else f"wandb sync exited with {done.returncode}"
    return run, None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ablate.sync", description=__doc__.split("\n")[0])
    parser.add_argument("study_dir", type=Path, help="a study (sweep) directory, or any directory of runs")
    parser.add_argument("--jobs", type=int, default=4, help="uploads at a time (default 4)")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds allowed per run (default 600)")
    parser.add_argument("--dry-run", action="store_true", help="list what would be uploaded and stop")
    args = parser.parse_args(argv)
    if not args.study_dir.is_dir():
        print(
            f"error: {args.study_dir} is not a directory; give a study directory such as outputs/studies/<date>/<time>",
            file=sys.stderr,
        )
        return 2
    runs = offline_runs(args.study_dir)
    todo = [r for r in runs if not is_synced(r)]
    print(
        f"{len(runs)} offline W&B run(s) in {args.study_dir}: {len(runs) - len(todo)} already synced, "
        f"{len(todo)} to upload"
    )
    groups = by_wandb_id(todo)
    shared = [group for group in groups if len(group) > 1]
    if shared:
        print(
            f"note: {sum(map(len, shared))} offline runs share {len(shared)} W&B id(s) "
            f"(e.g. {wandb_id(shared[0][0])}): each id's folders are uploaded one after another, oldest first"
        )
    if args.dry_run or not todo:
        for run in todo:
            print(f"  would upload {run}")
        return 0

    def sync_group(group: list[Path]) -> list[tuple[Path, str | None]]:
        return [sync_one(run, args.timeout) for run in group]

    failed = 0
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        for results in pool.map(sync_group, groups):
            for run, error in results:
                failed += error is not None
                print(f"  {'failed' if error else 'synced'}: {run}" + (f": {error}" if error else ""), flush=True)
    print(f"{len(todo) - failed} synced, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
