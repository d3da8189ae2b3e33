"""A run's life cycle: open its record, train, and always close it with a status.

``completed`` and ``diverged`` come from the loop; any exception becomes ``failed`` with its traceback in
``result.json``, so one broken run never takes a study down and never leaves a record half-written.
"""

from __future__ import annotations

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

from ablate.config import Config, WandbTrackerConfig, config_dict, resolve_warmup_steps, run_id
from ablate.runtime import atomic_write_text, limit_threads_to_allocation, pick_device, provenance
from ablate.tracking import CONFIG_FILE, METRICS_FILE, RESULT_FILE, Console, RunRecord, Tracker, Trackers
from ablate.train import train


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


def execute(config: Config, run_dir: Path, label: str, overrides: list[str], study: dict[str, Any]) -> str:
    """Run one training job into ``run_dir`` and return its status (completed, diverged or failed)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    set_aside_old_record(run_dir)
    atomic_write_text(run_dir / CONFIG_FILE, OmegaConf.to_yaml(OmegaConf.create(config_dict(config))))
    info: dict[str, Any] = {
        "run_id": run_id(config),
        "label": label,
        "run_dir": str(run_dir),
        "overrides": overrides,
        "study": study,
        "warmup_steps": resolve_warmup_steps(config),
        "started_at": _now(),
    }
    record = RunRecord(run_dir)
    trackers = Trackers(
        [record, *extra_trackers(config, run_dir), Console(config.tracker.progress, config.steps, label)]
    )
    tic = time.perf_counter()
    result: dict[str, Any] = dict(info)
    with terminate_as_exception():
        return _train_and_close(config, trackers, info, result, tic)


def _train_and_close(
    config: Config, trackers: Trackers, info: dict[str, Any], result: dict[str, Any], tic: float
) -> str:
    try:
        limit_threads_to_allocation()
        device = pick_device(config.device)
        info["provenance"] = provenance(device)
        trackers.start(info)
        outcome = train(config, device, trackers.log)
        result.update(
            status=outcome.status,
            outcome=outcome.outcome,
            summary={
                **outcome.summary,
                "steps_completed": outcome.steps_completed,
                "diverged_step": outcome.diverged_step,
                "divergence_reason": outcome.divergence_reason,
            },
        )
    except (KeyboardInterrupt, Terminated) as err:  # recorded, then the process goes on ending
        what = "interrupted (KeyboardInterrupt)" if isinstance(err, KeyboardInterrupt) else str(err)
        result.update(status="failed", error=what, traceback=traceback.format_exc())
        _close(trackers, result, info, tic)
        raise
    except Exception as err:  # a failed run is recorded, never propagated: the study goes on
        first = (str(err).strip().splitlines() or [""])[0]
        result.update(status="failed", error=f"{type(err).__name__}: {first}", traceback=traceback.format_exc())
    _close(trackers, result, info, tic)
    return result["status"]


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
        from ablate.wandb_tracker import WandbTracker

        return [WandbTracker(config, run_dir)]
    return []


def _close(trackers: Trackers, result: dict[str, Any], info: dict[str, Any], tic: float) -> None:
    result.setdefault("summary", {"steps_completed": trackers.updates_logged})
    result.update(provenance=info.get("provenance"), ended_at=_now(), wall_time_s=time.perf_counter() - tic)
    for tracker in trackers.trackers:  # the run record first; a tracker failing at the end costs nothing else
        try:
            tracker.finish(result)
        except Exception as err:
            warnings.warn(f"{type(tracker).__name__} failed to finish: {err}", stacklevel=1)
