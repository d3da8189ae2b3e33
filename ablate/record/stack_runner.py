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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ablate.config import Config, run_id
from ablate.record.claims import Claim
from ablate.record.files import DiskFull, is_disk_full
from ablate.record.runner import (
    Terminated,
    _close,
    claim_run,
    failure_fields,
    open_record,
    outcome_fields,
    terminate_as_exception,
)
from ablate.record.tracking import Trackers
from ablate.run.runtime import pick_device, provenance, set_threads
from ablate.run.train import Outcome
from ablate.run.user_code import user_code


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
    """Start every member's trackers, train the stack, close each record as its member ends (module docstring)."""
    from ablate.run.stacked.loop import train_stack

    config = members[0].job.config
    try:
        set_threads(config.cpu_threads)
        device = pick_device(config.device)
        shared = provenance(device)
        for position, member in enumerate(members):
            member.info["provenance"] = {**shared, "stacked": {"members": len(members), "position": position}}
            if code := user_code(member.job.config):
                member.info["provenance"]["user_code"] = code
            member.trackers.start(member.info)
        print(
            f"stack of {len(members)} runs on {device}: {', '.join(m.job.label for m in members[:4])}"
            f"{' ...' if len(members) > 4 else ''}",
            file=sys.stderr,
            flush=True,
        )

        def on_done(i: int, outcome: Outcome | Exception) -> None:
            if isinstance(outcome, Exception):
                _finish(members[i], failure_fields(outcome))
            else:
                _finish(members[i], outcome_fields(outcome))

        train_stack(
            [m.job.config for m in members], device, [m.trackers.log for m in members], on_done
        )
    except (KeyboardInterrupt, Terminated) as err:  # recorded, then the process goes on ending
        _fail_open(members, err)
        raise
    except Exception as err:  # the stack failed: its open members are recorded failed; other stacks go on
        _fail_open(members, err)
        if is_disk_full(err):
            raise DiskFull(getattr(err, "filename", None) or members[0].info["run_dir"]) from None


def _finish(member: OpenMember, fields: dict[str, Any]) -> None:
    result = {**member.info, **fields}
    _close(member.trackers, result, member.info, member.started_s)
    member.status = str(result["status"])


def _fail_open(members: list[OpenMember], err: BaseException) -> None:
    """Close every member still training as ``failed`` with ``err``."""
    fields = failure_fields(err)
    for member in members:
        if not member.status:
            _finish(member, fields)
