"""A run's life cycle: open its record, train, and always close it with a status.

``completed`` and ``diverged`` come from the loop; any exception becomes ``failed`` with its traceback in
``result.json``, so one broken run never takes a study down and never leaves a record half-written.
"""

from __future__ import annotations

import json
import shutil
import signal
import sys
import threading
import time
import traceback
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from ablate.config import Config, config_dict, run_id
from ablate.record.claims import Claim, describe_holder, read_info
from ablate.record.config import WandbTrackerConfig
from ablate.record.files import DiskFull, atomic_write_text, is_disk_full
from ablate.record.tracking import CONFIG_FILE, METRICS_FILE, RESULT_FILE, Console, RunRecord, Tracker, Trackers
from ablate.run.runtime import pick_device, provenance, set_threads
from ablate.run.schedules import resolve_warmup_steps
from ablate.run.train import Outcome, train
from ablate.run.user_code import user_code

DONE = ("completed", "diverged")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def set_aside_old_record(run_dir: Path) -> Path | None:
    """Move an earlier record in ``run_dir`` to ``run_dir/superseded/<time>/`` instead of mixing or losing it."""
    old = [run_dir / name for name in (RESULT_FILE, METRICS_FILE, CONFIG_FILE) if (run_dir / name).exists()]
    if not old:
        return None
    target = run_dir / "superseded" / datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    target.mkdir(parents=True)
    for path in old:
        shutil.move(str(path), target / path.name)
    return target


def execute(
    config: Config,
    run_dir: Path,
    label: str,
    overrides: list[str],
    study: dict[str, Any],
    study_dir: Path | None = None,
) -> str:
    """Run one training job into ``run_dir`` and return its status (completed, diverged or failed).

    In a study (``study_dir``), the run is claimed first (``ablate.record.claims``): if another process holds it,
    nothing is touched and ``claimed`` is returned; if another command finished it since this one planned
    it, ``skipped``. A full disk ends the run ``failed`` where its record can still be written, then raises
    ``DiskFull`` so that the study stops.
    """
    rid = run_id(config)
    if study_dir is None:
        return _execute(config, run_dir, label, overrides, study, rid)
    claim = claim_run(study_dir, rid, label, study)
    if isinstance(claim, str):
        return claim
    status = "failed"
    try:
        claim.start(run_dir)
        status = _execute(config, run_dir, label, overrides, study, rid)
        return status
    finally:
        claim.release(status, run_dir)


def claim_run(study_dir: Path, rid: str, label: str, study: dict[str, Any]) -> Claim | str:
    """The run's claim, or why this command does not train it (said in one line): ``claimed`` (another process
    holds it) or ``skipped`` (another command completed or diverged it since this one planned it)."""
    claim = Claim(study_dir, rid)
    if not claim.acquire():
        holder = describe_holder(read_info(study_dir, rid))
        print(f"[{label}] claimed by another command ({holder}): not run here", file=sys.stderr, flush=True)
        return "claimed"
    done = done_meanwhile(claim.previous, rid, study)
    if done is not None:
        claim.release()
        print(f"[{label}] {done} by another command meanwhile: not run again", file=sys.stderr, flush=True)
        return "skipped"
    return claim


def done_meanwhile(previous: dict[str, Any], rid: str, study: dict[str, Any]) -> str | None:
    """The status of a run that another command completed or diverged after this command planned it."""
    if previous.get("state") not in DONE:
        return None
    try:
        result = json.loads((Path(previous["run_dir"]) / RESULT_FILE).read_text())
    except (OSError, KeyError, TypeError, json.JSONDecodeError):
        return None
    if result.get("run_id") != rid or result.get("status") not in DONE:
        return None
    if not study.get("resume", True) and str(previous.get("updated_at", "")) < str(study.get("started_at", "")):
        return None  # --fresh: a record from before this command is run again
    return str(result["status"])


def _execute(config: Config, run_dir: Path, label: str, overrides: list[str], study: dict[str, Any], rid: str) -> str:
    trackers, info = open_record(config, run_dir, label, overrides, study, rid)
    tic = time.perf_counter()
    result: dict[str, Any] = dict(info)
    with terminate_as_exception():
        return _train_and_close(config, trackers, info, result, tic)


def open_record(
    config: Config, run_dir: Path, label: str, overrides: list[str], study: dict[str, Any], rid: str, progress: str = ""
) -> tuple[Trackers, dict[str, Any]]:
    """Set an earlier record aside, write ``config.yaml``, and return the run's trackers (not yet started) and the
    start of its ``result.json``. ``progress`` overrides ``tracker.progress`` (a stack prints lines, not bars)."""
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        set_aside_old_record(run_dir)
        atomic_write_text(run_dir / CONFIG_FILE, OmegaConf.to_yaml(OmegaConf.create(config_dict(config))))
    except OSError as err:
        if is_disk_full(err):
            raise DiskFull(err.filename or str(run_dir)) from None
        raise
    info: dict[str, Any] = {
        "run_id": rid,
        "label": label,
        "run_dir": str(run_dir),
        "overrides": overrides,
        "study": study,
        "warmup_steps": resolve_warmup_steps(config),
        "started_at": _now(),
    }
    console = Console(progress or config.tracker.progress, config.steps, label)
    return Trackers([RunRecord(run_dir), *extra_trackers(config, run_dir), console]), info


def _train_and_close(
    config: Config, trackers: Trackers, info: dict[str, Any], result: dict[str, Any], tic: float
) -> str:
    try:
        set_threads(config.cpu_threads)
        device = pick_device(config.device)
        info["provenance"] = provenance(device)
        if code := user_code(config):  # the user's targets: package version and module file hash
            info["provenance"]["user_code"] = code
        trackers.start(info)
        result.update(outcome_fields(train(config, device, trackers.log)))
    except (KeyboardInterrupt, Terminated) as err:  # recorded, then the process goes on ending
        result.update(failure_fields(err))
        close_record(trackers, result, info, tic)
        raise
    except Exception as err:  # a failed run is recorded, never propagated: the study goes on
        result.update(failure_fields(err))
        close_record(trackers, result, info, tic)
        if is_disk_full(err):  # recorded as failed where a byte could still be written; the study stops
            raise DiskFull(getattr(err, "filename", None) or info["run_dir"]) from None
        return str(result["status"])
    close_record(trackers, result, info, tic)
    return str(result["status"])


def outcome_fields(outcome: Outcome) -> dict[str, Any]:
    """What a finished training adds to ``result.json``: status, outcome, and the summary with how it ended."""
    return {
        "status": outcome.status,
        "outcome": outcome.outcome,
        "summary": {
            **outcome.summary,
            "steps_completed": outcome.steps_completed,
            "diverged_step": outcome.diverged_step,
            "divergence_reason": outcome.divergence_reason,
        },
    }


def failure_fields(err: BaseException) -> dict[str, Any]:
    """What an exception adds to ``result.json``: status ``failed``, the error's first line and the traceback."""
    if isinstance(err, KeyboardInterrupt):
        what = "interrupted (KeyboardInterrupt)"
    elif isinstance(err, Terminated):
        what = str(err)
    else:
        what = f"{type(err).__name__}: {(str(err).strip().splitlines() or [''])[0]}"
    tb = "".join(traceback.format_exception(err))
    return {"status": "failed", "error": what, "traceback": tb}


class Terminated(BaseException):
    """SIGTERM arrived: ``scancel``, pre-emption, a SLURM time limit, or ``kill``."""


def time_limit_near(signum: int, frame: Any) -> None:
    """SIGUSR2, which submitit asks SLURM to send ``signal_delay_s`` before the time limit (SLURM may send it up
    to a minute earlier): warn and go on. Left to submitit's own handler, it would end the job at once, unrecorded
    (ablate does not requeue: the next run of the study re-runs what SLURM stopped)."""
    print("warning: SIGUSR2: SLURM's time limit is near; the run goes on until SLURM stops it", file=sys.stderr)


@contextmanager
def terminate_as_exception() -> Iterator[None]:
    """While a run trains, SIGTERM raises ``Terminated`` so the run can record that it was stopped before
    the process ends (SLURM sends SIGTERM, then SIGKILL after its ``KillWait``). Main thread only."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        raise Terminated("terminated by SIGTERM (scancel, pre-emption, a time limit or kill)")

    previous = signal.signal(signal.SIGTERM, handler), signal.signal(signal.SIGUSR2, time_limit_near)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous[0])
        signal.signal(signal.SIGUSR2, previous[1])


def extra_trackers(config: Config, run_dir: Path) -> list[Tracker]:
    """The trackers a ``tracker`` preset adds to the run record and the console."""
    if isinstance(config.tracker, WandbTrackerConfig):
        from ablate.record.wandb.tracker import WandbTracker

        return [WandbTracker(config, run_dir)]
    return []


def close_record(trackers: Trackers, result: dict[str, Any], info: dict[str, Any], tic: float) -> None:
    result.setdefault("summary", {"steps_completed": trackers.updates_logged})
    result.update(provenance=info.get("provenance"), ended_at=_now(), wall_time_s=time.perf_counter() - tic)
    for tracker in trackers.trackers:  # the run record first; a tracker failing at the end costs nothing else
        try:
            tracker.finish(result)
        except Exception as err:
            warnings.warn(f"{type(tracker).__name__} failed to finish: {err}", stacklevel=1)
