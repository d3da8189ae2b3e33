"""The Weights & Biases tracker: offline by default, never in the way of a run.

Only this file imports wandb (lazily, when ``tracker=wandb``). Layout for dashboards: ``project`` from config,
``group`` = the study (the sweep directory, ``<date>_<time>``; ``runs`` for single runs), ``job_type=train``,
``name`` built from the study's factors (``adam-warmup100-cluster-s0``), ``tags`` = ``factor=value``, and the
resolved config flattened to dotted keys (``optimizer.name``, ``skew.strength``) plus ``run_id``.

**One W&B run per attempt.** The W&B ``id`` is ``<run_id>-<yymmdd-HHMMSS of the attempt's start, UTC>-<4 hex>``
(``attempt_id``), so a run killed and re-run in the same run directory writes a second W&B run beside the first
(``<run dir>/wandb/offline-run-*-<id>``) instead of appending to its history: a dashboard never shows a mixed
history. ``run_id`` is in each attempt's config and summary (filter or group by it to see every attempt of one
config); ``python -m ablate.sync`` uploads every attempt.

**W&B unreachable.** With ``tracker.mode=online``, a run whose ``wandb.init`` fails (no answer within
``tracker.init_timeout_s``, a refused connection, no API key) logs to W&B *offline* at once (a fresh attempt
id: wandb's service still holds the failed one) and says so in one warning line with the command that uploads
it later (``python -m ablate.sync``). In a study it also records the failure (when, why) under the command's
``multirun_id`` in ``<sweep dir>/wandb_offline.json``, written atomically: every later run of the same command
then starts offline without touching the network (silently in a process that already warned, one short note
line otherwise, e.g. in another launcher worker). A new command on the same study (a new ``multirun_id``:
resuming or re-running it) tries online again, and adds its own entry if W&B is still unreachable; commands
working on one study at once keep their own entries. Single runs (no study) fall back offline the same way,
each on its own. The failed online attempt leaves an all-but-empty ``wandb/run-*`` folder, which sync ignores.

``step`` (the optimizer step) is the x-axis of every chart. W&B gets a subsample -- every
``tracker.log_every``-th line and every line with held-out or probe metrics -- because each ``log`` call costs
about a quarter of a default MLP step; the local run record keeps every step. If W&B fails to start even
offline, or fails to log, the tracker warns once and goes quiet; the run goes on.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ablate.config import Config, config_dict

GROUPS_IN_NAME = ("optimizer", "skew", "model", "data", "schedule", "probes")
OFFLINE_MARKER = "wandb_offline.json"  # in a study directory: W&B was unreachable during this command
_told_offline: set[tuple[str, str]] = set()  # (sweep dir, multirun_id) this process already warned about


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"optimizer": {"beta2": 0.999}}`` -> ``{"optimizer.beta2": 0.999}``."""
    out: dict[str, Any] = {}
    for key, value in d.items():
        if isinstance(value, dict):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def run_name(overrides: list[str], factors: list[str] | None) -> str:
    """A readable W&B name from the factor values: ``optimizer=adam warmup=100 seed=0`` -> ``adam-warmup100-s0``."""
    parts = []
    for override in overrides:
        key, _, value = override.partition("=")
        key = key.lstrip("+~")
        if factors is not None and key not in factors:
            continue
        if key in GROUPS_IN_NAME:
            parts.append(value)
        elif key == "seed":
            parts.append(f"s{value}")
        else:
            parts.append(f"{key.rsplit('.', 1)[-1]}{value}")
    return "-".join(parts) or "defaults"


PROVENANCE_KEYS = ("git_commit", "git_dirty", "host", "device", "device_name", "torch", "python")


def provenance_keys(provenance: dict[str, Any]) -> dict[str, Any]:
    """The run record's provenance that is worth a W&B filter, as ``provenance.<key>`` config entries."""
    return {f"provenance.{key}": provenance.get(key) for key in PROVENANCE_KEYS if key in provenance}


def study_group(study: dict[str, Any]) -> str:
    """The W&B group of a run: its study's sweep directory as ``<parent>_<name>``, or ``runs``."""
    sweep_dir = study.get("sweep_dir")
    if not sweep_dir:
        return "runs"
    path = Path(sweep_dir)
    return f"{path.parent.name}_{path.name}"


def attempt_id(run_id: str, started_at: str | None = None) -> str:
    """The W&B id of one attempt of a run: ``<run_id>-<yymmdd-HHMMSS>-<4 hex>``.

    The time is the attempt's start (``started_at`` of its record, UTC) so ids sort by attempt; the random tail
    keeps two attempts started in the same second apart. 16 + 19 characters, within W&B's [A-Za-z0-9_-] ids.
    """
    try:
        when = datetime.fromisoformat(started_at) if started_at else datetime.now(timezone.utc)
    except ValueError:
        when = datetime.now(timezone.utc)
    if when.tzinfo is not None:
        when = when.astimezone(timezone.utc)
    return f"{run_id}-{when:%y%m%d-%H%M%S}-{secrets.token_hex(2)}"


def offline_marker(study: dict[str, Any]) -> Path | None:
    """Where a study records that W&B was unreachable: ``<sweep dir>/wandb_offline.json``.

    None for a single run (no study) or a study without a ``multirun_id`` (its commands cannot be told apart).
    """
    sweep_dir = study.get("sweep_dir")
    return Path(sweep_dir) / OFFLINE_MARKER if sweep_dir and study.get("multirun_id") else None


def read_marker(path: Path) -> dict[str, Any]:
    try:
        marker = json.loads(path.read_text())
    except (OSError, ValueError):  # none yet, or unreadable: as if none
        return {}
    return marker if isinstance(marker, dict) and isinstance(marker.get("commands"), dict) else {}


def study_offline(study: dict[str, Any]) -> dict[str, Any] | None:
    """``{"since": ..., "reason": ...}`` if W&B was found unreachable earlier in this command, else None.

    The marker holds one entry per command (``multirun_id``), so commands working on one study at once do not
    undo each other's; an entry of an earlier command is ignored: each command tries online once more.
    """
    path = offline_marker(study)
    if path is None:
        return None
    entry = read_marker(path).get("commands", {}).get(study["multirun_id"])
    return entry if isinstance(entry, dict) else None


def mark_study_offline(study: dict[str, Any], reason: str) -> None:
    """Tell the study's later runs of this command (in this process or another) to start offline at once."""
    path = offline_marker(study)
    if path is None:
        return
    from ablate.runtime import atomic_write_json  # here, not at the top: analysis imports this module, not torch

    marker = read_marker(path) or {
        "note": "W&B was unreachable: each command's later runs logged offline; upload with python -m ablate.sync",
        "commands": {},
    }
    since = datetime.now(timezone.utc).isoformat(timespec="seconds")
    marker["commands"][study["multirun_id"]] = {"since": since, "reason": reason}
    try:
        atomic_write_json(path, marker)
    except OSError:  # cannot write there: each run then finds out for itself
        pass


def sync_hint(study: dict[str, Any], run_dir: Path) -> str:
    return f"python -m ablate.sync {study.get('sweep_dir') or run_dir}"


class WandbTracker:
    """Sends a run's config, a subsample of its metrics, its summary and its status to W&B."""

    def __init__(self, config: Config, run_dir: Path) -> None:
        self.config = config
        self.run_dir = run_dir
        self.log_every = config.tracker.log_every
        self.flush_every_s = config.tracker.flush_every_s
        self._buffer: list[dict[str, Any]] = []
        self._flushed_at = time.monotonic()
        self.run: Any = None
        self.wandb_id = ""  # this attempt's W&B id, set by start
        self._warned = False

    def _warn(self, what: str, err: BaseException) -> None:
        if not self._warned:  # once, one line: the run goes on with its local record
            first = (str(err).strip().splitlines() or [type(err).__name__])[0]
            print(f"warning: W&B {what} failed, continuing with the local run record only: {first}", file=sys.stderr)
            self._warned = True
        self.run = None

    def start(self, info: dict[str, Any]) -> None:
        cfg = self.config.tracker
        mode = cfg.mode if cfg.mode != "offline" else os.environ.get("WANDB_MODE", "offline")
        for key, value in (("WANDB_ERROR_REPORTING", "false"), ("WANDB_SILENT", "true")):
            os.environ.setdefault(key, value)
        study = info.get("study") or {}
        told = (str(study.get("sweep_dir")), str(study.get("multirun_id")))
        if mode == "online" and (marker := study_offline(study)) is not None:
            mode = "offline"  # W&B was unreachable earlier in this command: do not wait for it again
            if told not in _told_offline:  # e.g. another launcher worker: one short line
                _told_offline.add(told)
                print(
                    f"note: W&B unreachable since {marker.get('since')} in this study: logging offline "
                    f"(upload later: {sync_hint(study, self.run_dir)})",
                    file=sys.stderr,
                )
        try:
            import wandb
        except Exception as err:
            self._warn("start", err)
            return
        self.wandb_id = attempt_id(info["run_id"], info.get("started_at"))
        try:
            self.run = self._init(wandb, info, mode)
        except Exception as err:
            if mode != "online":
                self._warn("start", err)
                return
            reason = (str(err).strip().splitlines() or [type(err).__name__])[0]
            in_study = offline_marker(study) is not None
            if in_study:
                mark_study_offline(study, reason)
                _told_offline.add(told)
            print(
                f"warning: W&B online start failed ({reason}); this run logs to W&B offline instead, "
                f"{'as will the rest of this study; ' if in_study else ''}"
                f"upload later: {sync_hint(study, self.run_dir)}",
                file=sys.stderr,
            )
            # a new id: wandb's service still holds the failed online run's id ("run ID ... is in use")
            self.wandb_id = attempt_id(info["run_id"], info.get("started_at"))
            try:
                self.run = self._init(wandb, info, "offline")
            except Exception as err:
                self._warn("start", err)
                return
        try:
            self.run.define_metric("step")
            self.run.define_metric("*", step_metric="step")
            self.run.summary.update(
                {
                    "run_id": info["run_id"],
                    "started_at": info.get("started_at"),
                    "run_dir": str(self.run_dir),
                    "warmup_steps": info.get("warmup_steps"),
                }
            )
        except Exception as err:  # W&B must never break a run
            self._warn("start", err)

    def _init(self, wandb: Any, info: dict[str, Any], mode: str) -> Any:
        """``wandb.init`` for this attempt in ``mode`` (offline, online or disabled)."""
        cfg = self.config.tracker
        os.environ["WANDB_MODE"] = mode  # set before wandb starts: init(mode=...) alone still calls home at exit
        study = info.get("study") or {}
        factors = study.get("factors")
        overrides = info.get("overrides", [])
        return wandb.init(
            project=cfg.project,
            entity=cfg.entity or None,
            group=study_group(study),
            job_type="train",
            name=run_name(overrides, factors),
            id=self.wandb_id,  # one W&B run per attempt: never resumes another attempt's history
            tags=[o.lstrip("+~") for o in overrides if factors is None or o.partition("=")[0] in factors],
            config={
                "run_id": info["run_id"],
                **flatten(config_dict(self.config)),
                **provenance_keys(info.get("provenance") or {}),
            },
            dir=str(self.run_dir),
            mode=mode,
            settings=wandb.Settings(
                init_timeout=cfg.init_timeout_s,
                console="off",
                x_save_requirements=cfg.save_requirements,
                x_disable_stats=not cfg.system_metrics,
                disable_git=True,  # 4 git subprocesses per init; the commit is in the config below
            ),
        )

    def log(self, step: int, metrics: dict[str, float]) -> None:
        if self.run is None:
            return
        sparse = any(key.startswith(("eval/", "probe/")) for key in metrics)
        if step % self.log_every and not sparse and step != self.config.steps - 1:
            return
        self._buffer.append({"step": step, **metrics})
        now = time.monotonic()
        if now - self._flushed_at >= self.flush_every_s:
            self._flush()
            self._flushed_at = now

    def _flush(self) -> None:
        """Send the buffered rows: W&B's service then works in one burst, not beside every training step."""
        rows, self._buffer = self._buffer, []
        try:
            for row in rows:
                if self.run is None:
                    return
                self.run.log(row)
        except Exception as err:
            self._warn("log", err)

    def finish(self, result: dict[str, Any]) -> None:
        if self.run is None:
            return
        self._flush()
        if self.run is None:
            return
        try:
            summary = {k: v for k, v in (result.get("summary") or {}).items() if v is not None}
            self.run.summary.update({**summary, "status": result["status"], "error": result.get("error")})
            self.run.finish(exit_code=1 if result["status"] == "failed" else 0)
        except Exception as err:
            self._warn("finish", err)
