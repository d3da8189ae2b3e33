"""A stack's life cycle: every member's record as a solo run's (``ablate.record.runner``), one training for all.

Each member is claimed, gets its own run directory, ``config.yaml``, ``metrics.jsonl``, ``result.json`` (same
``run_id``, statuses and outcomes as its solo run) and its own W&B run; ``provenance.stacked`` says it trained in a
stack and with how many members. A member's record is closed the moment its outcome is known (a diverged member
mid-way, the rest at the end), so a stack killed with ``kill -9`` leaves finished members finished and the others
``running`` with a free claim: killed, and run again by the next command on the study. An exception in the stack
(outside one member's build) marks every member still training ``failed`` with that error and is not raised:
the launcher goes on with the other stacks. SIGTERM and Ctrl-C are recorded the same way, then raised; a full
disk is recorded where possible, then raised as ``DiskFull`` (the study stops).
"""

from __future__ import annotations

import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ablate.config import Config, run_id
from ablate.record.claims import Claim
from ablate.record.files import DiskFull, is_disk_full
from ablate.record.runner import (
    Terminated,
    claim_run,
    close_record,
    failure_fields,
    open_record,
    outcome_fields,
    terminate_as_exception,
)
from ablate.record.tracking import Trackers
from ablate.run.runtime import pick_device, provenance, set_threads
from ablate.run.train import LogFn, Outcome
from ablate.run.user_code import user_code

TRACKER_THREADS = 4  # W&B start/finish overlap ~20% in 4 threads (the GIL), no more in 8


@dataclass
class MemberJob:
    """One grid point of a stack, as the task function would run it alone."""

    config: Config
    run_dir: Path
    label: str
    overrides: list[str]
    study: dict[str, Any]
    study_dir: Path | None = None


@dataclass
class OpenMember:
    """A member whose record is open: its trackers, its ``result.json`` so far, its claim."""

    job: MemberJob
    trackers: Trackers
    info: dict[str, Any]
    claim: Claim | None
    started_s: float = field(default_factory=time.perf_counter)
    started: Future[None] | None = None  # its trackers' start, in the tracker pool
    status: str = ""  # set when its record is closed


def execute_stack(jobs: list[MemberJob]) -> list[str]:
    """Train the members of one stack into their run directories; returns each member's status (completed,
    diverged, failed, or claimed/skipped when another command has it), in the order of ``jobs``."""
    statuses = [""] * len(jobs)
    members: list[OpenMember] = []
    positions: list[int] = []
    try:
        for i, job in enumerate(jobs):
            rid = run_id(job.config)
            claim = claim_run(job.study_dir, rid, job.label, job.study) if job.study_dir is not None else None
            if isinstance(claim, str):
                statuses[i] = claim
                continue
            try:
                trackers, info = open_record(job.config, job.run_dir, job.label, job.overrides, job.study, rid, "line")
            except BaseException:
                if claim is not None:
                    claim.release("failed", job.run_dir)
                raise
            if claim is not None:
                claim.start(job.run_dir)
            members.append(OpenMember(job, trackers, info, claim))
            positions.append(i)
        if members:
            with terminate_as_exception():
                _train_members(members)
    finally:
        for member in members:
            if member.claim is not None:
                member.claim.release(member.status or "failed", member.job.run_dir)
    for position, member in zip(positions, members, strict=True):
        statuses[position] = member.status
    return statuses


def _train_members(members: list[OpenMember]) -> None:
    """Start every member's trackers, train the stack, close each record as its member ends (module docstring).

    W&B costs ~20 ms to start a run and ~10 ms to finish one (offline), most of it Python work in this process: the
    members' trackers start in a small thread pool while the stack builds its members, and the records of the
    members that reach the end are closed in that pool too.
    """
    from ablate.run.stacked.loop import train_stack

    config = members[0].job.config
    pool = ThreadPoolExecutor(TRACKER_THREADS, thread_name_prefix="ablate-trackers")
    closing: list[Future[None]] = []
    try:
        set_threads(config.cpu_threads)
        device = pick_device(config.device)
        shared = provenance(device)
        for position, member in enumerate(members):
            member.info["provenance"] = {**shared, "stacked": {"members": len(members), "position": position}}
            if code := user_code(member.job.config):
                member.info["provenance"]["user_code"] = code
            member.started = pool.submit(member.trackers.start, member.info)
        print(
            f"stack of {len(members)} runs on {device}: {', '.join(m.job.label for m in members[:4])}"
            f"{' ...' if len(members) > 4 else ''}",
            file=sys.stderr,
            flush=True,
        )

        def on_done(i: int, outcome: Outcome | Exception) -> None:
            fields = failure_fields(outcome) if isinstance(outcome, Exception) else outcome_fields(outcome)
            closing.append(pool.submit(_finish, members[i], fields))

        def on_built() -> None:  # the first log is near: every tracker must have started
            for member in members:
                _wait(member.started)

        logs: list[LogFn] = [m.trackers.log for m in members]
        train_stack([m.job.config for m in members], device, logs, on_done, on_built)
        for future in closing:
            future.result()
    except (KeyboardInterrupt, Terminated) as err:  # recorded, then the process goes on ending
        _fail_open(members, err, closing)
        raise
    except Exception as err:  # the stack failed: its open members are recorded failed; other stacks go on
        _fail_open(members, err, closing)
        if is_disk_full(err):
            raise DiskFull(getattr(err, "filename", None) or members[0].info["run_dir"]) from None
    finally:
        pool.shutdown(wait=True)


def _wait(future: Future[None] | None) -> None:
    """Wait for a tracker start; it raising is the run's failure, so it is raised here, in the training thread."""
    if future is not None:
        future.result()


def _finish(member: OpenMember, fields: dict[str, Any]) -> None:
    try:
        _wait(member.started)
    except Exception:  # a tracker failed to start: its record still closes, with the run's own status
        pass
    result = {**member.info, **fields}
    close_record(member.trackers, result, member.info, member.started_s)
    member.status = str(result["status"])


def _fail_open(members: list[OpenMember], err: BaseException, closing: list[Future[None]]) -> None:
    """Close every member still training as ``failed`` with ``err`` (after the closes already under way)."""
    for future in closing:
        try:
            future.result()
        except Exception:  # close_record warns about a tracker that fails; anything else must not stop the others
            pass
    fields = failure_fields(err)
    for member in members:
        if not member.status:
            _finish(member, fields)
