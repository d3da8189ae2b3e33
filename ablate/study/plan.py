"""A study's plan: for every grid point, its ``run_id``, its run directory, and whether it runs now.

Resuming is by identity, not by position: a grid point whose ``run_id`` already has a record in the study
that says ``completed`` or ``diverged`` is skipped (divergence is a result, not an error); ``failed``,
``running`` from a process that is gone (killed, pre-empted, out of time), and missing ones run. A re-run
goes into the directory of the earlier record, which ``runner.set_aside_old_record`` moves to
``superseded/``: nothing recorded is overwritten or deleted. New grid points (more seeds, a new warmup) get a
directory named after their factor values, ``warmup=100,seed=3``, stable whatever else the grid holds.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ablate.record.claims import is_held, lock_path

RESULT_FILE = "result.json"
DONE = ("completed", "diverged")
_RANK = {"completed": 3, "diverged": 3, "running": 2, "failed": 1}
_UNSAFE = re.compile(r"[^A-Za-z0-9._=+-]")


@dataclass(frozen=True)
class Record:
    run_dir: Path
    result: dict[str, Any]
    study_dir: Path | None = None  # where the run's claim lives (ablate.record.claims); None outside a study

    @property
    def status(self) -> str:
        return str(self.result.get("status"))


@dataclass(frozen=True)
class PlannedRun:
    overrides: list[str]  # the job's overrides, as the sweeper made them
    run_id: str
    subdir: str  # run directory, relative to the study directory
    action: str  # "run" or "skip"
    reason: str  # why: completed/diverged/failed/killed before, running elsewhere (pid N), new, fresh


STALE_AFTER_S = 1800.0  # a running record from another host, not in SLURM's queue, silent this long: dead


def is_alive(record: Record) -> bool:
    """Whether a ``running`` record's process still runs.

    On the host that wrote it: its pid exists. In a SLURM job: the job is still in ``squeue``. Otherwise (another
    host, no SLURM): its metrics file, written at every step, changed in the last ``STALE_AFTER_S`` seconds.
    """
    provenance = record.result.get("provenance") or {}
    pid = provenance.get("pid")
    if provenance.get("host") == socket.gethostname() and isinstance(pid, int):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    job = provenance.get("slurm_job_id")
    if job and shutil.which("squeue"):
        listed = subprocess.run(["squeue", "-h", "-j", str(job)], capture_output=True, text=True, timeout=30)
        if listed.returncode == 0:
            return bool(listed.stdout.strip())
        if "invalid job id" in listed.stderr.lower():  # finished long enough ago that SLURM forgot it
            return False
    files = [record.run_dir / "metrics.jsonl", record.run_dir / RESULT_FILE]
    newest = max((f.stat().st_mtime for f in files if f.exists()), default=0.0)
    return time.time() - newest < STALE_AFTER_S


def holder_alive(record: Record) -> bool:
    """Whether the process that wrote a ``running`` record still runs: its claim is held (``ablate.record.claims``);
    for records from before claims existed, ``is_alive``."""
    run_id = record.result.get("run_id")
    if record.study_dir is not None and isinstance(run_id, str) and lock_path(record.study_dir, run_id).exists():
        return is_held(record.study_dir, run_id)
    return is_alive(record)


def state(record: Record | None) -> str:
    """A run's state, the one classifier that status, ``summary.csv`` and the study's report all use:
    done (completed), diverged, failed, running, killed (a ``running`` record whose process is gone), missing."""
    if record is None:
        return "missing"
    if record.status == "completed":
        return "done"
    if record.status == "running":
        return "running" if holder_alive(record) else "killed"
    return record.status


def record_status(record: Record | None) -> str:
    """:func:`state` in the run record's words (``completed`` for done), as ``summary.csv`` writes it."""
    cell = state(record)
    return "completed" if cell == "done" else cell


def index_records(study_dir: Path) -> dict[str, Record]:
    """``run_id`` -> the record that counts for it: done beats running beats failed, then the newest."""
    best: dict[str, Record] = {}
    for path in study_dir.rglob(RESULT_FILE):
        if "superseded" in path.relative_to(study_dir).parts:
            continue
        try:
            result = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue  # a record being replaced right now, or damaged: the run counts as missing
        run_id = result.get("run_id") if isinstance(result, dict) else None
        if not isinstance(run_id, str):
            continue
        record = Record(path.parent, result, study_dir)
        old = best.get(run_id)
        if old is None or _key(record) > _key(old):
            best[run_id] = record
    return best


def _key(record: Record) -> tuple[int, str]:
    return _RANK.get(record.status, 0), str(record.result.get("ended_at") or record.result.get("started_at") or "")


def run_dir_name(overrides: list[str], factors: list[str]) -> str:
    """``["warmup=100", "seed=3", "steps=50"]`` with factors warmup, seed -> ``warmup=100,seed=3``."""
    parts = []
    for override in overrides:
        key, _, value = override.partition("=")
        if key.lstrip("+~") in factors:
            parts.append(_UNSAFE.sub("_", f"{key.lstrip('+~')}={value}"))
    name = ",".join(parts) or "run"
    return name if len(name) <= 120 else name[:100] + "~" + hashlib.sha256(name.encode()).hexdigest()[:8]


def plan(
    jobs: list[tuple[list[str], str]], factors: list[str], study_dir: Path, resume: bool = True
) -> list[PlannedRun]:
    """Decide every job of the grid: ``jobs`` are (overrides, run_id) in grid order."""
    records = index_records(study_dir) if study_dir.exists() else {}
    taken = {str(r.run_dir.relative_to(study_dir)): run_id for run_id, r in records.items()}
    planned = []
    for overrides, run_id in jobs:
        record = records.get(run_id)
        if record is not None:
            subdir = str(record.run_dir.relative_to(study_dir))
            cell = state(record)
            if not resume:
                action, reason = "run", "fresh"
            elif cell in ("done", "diverged"):
                action, reason = "skip", f"{record.status} before"
            elif cell == "running":
                holder = (record.result.get("provenance") or {}).get("pid")
                action, reason = "skip", f"running elsewhere (pid {holder})"
            else:
                action, reason = "run", f"{cell} before"
        else:
            subdir = run_dir_name(overrides, factors)
            if taken.get(subdir, run_id) != run_id:  # the name holds another config's record: keep both
                subdir = f"{subdir}~{run_id[:8]}"
            action, reason = "run", "new"
        taken[subdir] = run_id
        planned.append(PlannedRun(list(overrides), run_id, subdir, action, reason))
    return planned
