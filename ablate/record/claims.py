"""Run claims: one process at a time trains a given run of a study, however many commands work on the study.

Before a study run starts, its process **claims** the run: an exclusive ``flock`` (via ``filelock``) on
``<study>/.claims/<run_id>.lock``, held for the whole run and released by the kernel when the process ends
in any way, ``kill -9`` included, so a claim is never left stale by a dead process. (On a filesystem without
``flock``, ``filelock`` falls back to an ``O_EXCL`` marker that holds the holder's pid.) Beside the lock,
``<run_id>.json`` says who holds or last held the claim (host, pid, SLURM job, command) and how that attempt
ended (``running`` until its record is closed, then ``completed``, ``diverged`` or ``failed``) and where its
record is, so a command that gets the claim after another one can see at once that the run is already done,
even in another run directory.

Rules that follow: a second command on the same study takes only unclaimed runs and waits for the rest
(the sweeper's ``wait_for_others``); a record is moved to ``superseded/`` or overwritten only by the claim's
holder, so nothing live is ever touched; and a ``running`` record whose claim is free was killed.
"""

from __future__ import annotations

import json
import os
import socket
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

CLAIMS_DIR = ".claims"
ACQUIRE_TIMEOUT_S = 2.0  # a holder keeps its claim for a whole run; a reader probing it holds it for microseconds


def lock_path(study_dir: Path, run_id: str) -> Path:
    return study_dir / CLAIMS_DIR / f"{run_id}.lock"


def info_path(study_dir: Path, run_id: str) -> Path:
    return study_dir / CLAIMS_DIR / f"{run_id}.json"


def read_info(study_dir: Path, run_id: str) -> dict[str, Any]:
    """Who holds or last held the claim and how that attempt ended; ``{}`` if never claimed or unreadable."""
    try:
        data = json.loads(info_path(study_dir, run_id).read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def describe_holder(info: dict[str, Any]) -> str:
    """``pid 4242 on node1 (SLURM job 17)`` for messages."""
    where = f"pid {info.get('pid')} on {info.get('host')}"
    return where + (f" (SLURM job {info['slurm_job_id']})" if info.get("slurm_job_id") else "")


class Claim:
    """The exclusive claim on one run of a study, held by this process while it trains the run."""

    def __init__(self, study_dir: Path, run_id: str) -> None:
        self.study_dir = study_dir
        self.run_id = run_id
        self._lock = FileLock(lock_path(study_dir, run_id), thread_local=False)

    def acquire(self, timeout_s: float = ACQUIRE_TIMEOUT_S) -> bool:
        """Take the claim, or return False if another process holds it (waiting ``timeout_s`` for a reader's
        momentary probe to end). ``previous`` is then the info of the last attempt, if any."""
        lock_path(self.study_dir, self.run_id).parent.mkdir(parents=True, exist_ok=True)
        try:
            self._lock.acquire(timeout=timeout_s)
        except Timeout:
            return False
        self.previous = read_info(self.study_dir, self.run_id)
        return True

    def start(self, run_dir: Path) -> None:
        """Say that this process now trains the run into ``run_dir``."""
        self._write(state="running", run_dir=run_dir)

    def release(self, final_state: str | None = None, run_dir: Path | None = None) -> None:
        """Record how this attempt ended (unless ``final_state`` is None: nothing was run), then let go.

        The lock file stays, so waiters share one inode."""
        try:
            if final_state is not None and run_dir is not None:
                self._write(state=final_state, run_dir=run_dir)
        except OSError:
            pass  # a full disk: the run record says how the run ended; the claim is released all the same
        finally:
            self._lock.release()

    def _write(self, state: str, run_dir: Path) -> None:
        from ablate.record.files import atomic_write_json
        from ablate.run.runtime import slurm_job_id  # torch: only a training process writes claims

        info = {
            "run_id": self.run_id,
            "state": state,
            "run_dir": str(run_dir),
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "slurm_job_id": slurm_job_id(),
            "updated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        atomic_write_json(info_path(self.study_dir, self.run_id), info)


def is_held(study_dir: Path, run_id: str) -> bool:
    """Whether a live process holds the claim on ``run_id`` now (False if the run was never claimed).

    Probes the lock without waiting and lets go at once; a claimer that meets the probe waits it out
    (``ACQUIRE_TIMEOUT_S``), so probing never makes a run look claimed elsewhere.
    """
    path = lock_path(study_dir, run_id)
    if not path.exists():
        return False
    probe = FileLock(path, thread_local=False)
    try:
        probe.acquire(timeout=0)
    except Timeout:
        return True
    except OSError:  # a read-only copy of a study: nobody can be writing it
        return False
    probe.release()
    return False


def wait_until_released(study_dir: Path, run_ids: list[str], poll_s: float = 2.0) -> None:
    """Block until no process holds a claim on any of ``run_ids``."""
    pending = list(run_ids)
    while pending:
        pending = [r for r in pending if is_held(study_dir, r)]
        if pending:
            time.sleep(poll_s)
