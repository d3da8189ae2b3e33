"""The Weights & Biases tracker: offline by default, never in the way of a run.

Only this file imports wandb (lazily, when ``tracker=wandb``). What the dashboard shows:

- ``group`` = the study: a named study (or any ``hydra.sweep.dir``) by its directory, ``<parent>_<name>``
  (``studies_warmup-vs-optimizer``); an unnamed study (``outputs/studies/<date>/<time>``) by its factors and
  start, ``warmup-optimizer 2026-11-30 13:05:07`` (``study`` when nothing is swept; the factors of the
  command's stamp, so the analysis run of ``analysis.to_wandb`` lands beside it); ``runs`` for single runs.
  ``job_type=train``; ``name`` built from the study's factors (``adam-warmup100-cluster-s0``); ``tags`` =
  ``factor=value``.
- ``config``: the resolved config flattened to dotted keys (``optimizer.name``, ``skew.strength``) plus
  ``run_id`` and ``provenance.*`` (commit, host, device, versions), without ablate's plumbing: no
  ``tracker.*``, no ``fail_at_step`` (it only tests failure handling), ``smoke`` only on smoke runs, ``study``
  only when named.
- ``summary``: the run record's summary (``final_eval_loss``, ``best_eval_loss``, ``outcome``, ...), ``status``,
  ``error``, ``run_id``, ``started_at``, ``warmup_steps`` and ``run``: the run directory relative to its study
  (``optimizer=adam,warmup=100``; ``<date>/<time>`` or the directory's name for a single run) -- no local
  paths. Losses (``train/loss``, ``eval/loss``, ``eval/early|rest|cue_flipped/loss``) summarise as
  ``{"min", "last"}``, accuracies as ``{"max", "last"}`` (``define_metric``), so the runs table sorts by the
  best value (``eval/loss.min``). W&B's min and max turn NaN once a NaN was logged (a run that went
  non-finite); the record's ``best_eval_loss`` and ``best_eval_acc`` count finite values only.
- history: ``step`` (the optimizer step) is the x-axis of every chart. A point every ``tracker.log_every``
  steps, at the last update, and at every line with held-out or probe metrics. ``train/*``, ``opt/*`` (but
  ``opt/lr``) and ``sys/step_time`` are **means over the logging window**: the point at step ``s`` averages
  the steps since the previous window's end (``train/loss`` at 50 = the mean batch loss of steps 1..50; at
  step 0 the first batch alone; ``train/acc``, ``opt/grad_norm``, ``opt/update_ratio`` over the window's
  measured steps, every ``metrics_every``). ``opt/lr`` is the rate at the point's step; ``eval/*``, ``probe/*``
  and ``sys/probe_time`` are their step's values and never split a window. A run that stops early
  (diverged, failed) sends its last, shorter window at its last update. The local run record keeps every
  step's own values (``metrics.jsonl``); W&B gets points, not every step, because each ``log`` call costs
  about a quarter of a default MLP step.

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

If W&B fails to start even offline, or fails to log, the tracker warns once and goes quiet; the run goes on.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ablate import metrics as M
from ablate.config import Config, config_dict

GROUPS_IN_NAME = ("optimizer", "skew", "model", "data", "schedule", "probes")
OFFLINE_MARKER = "wandb_offline.json"  # in a study directory: W&B was unreachable during this command
_told_offline: set[tuple[str, str]] = set()  # (sweep dir, multirun_id) this process already warned about
# W&B summarises these by their best and their last value (define_metric), not by the last alone
LOSSES = (M.TRAIN_LOSS, M.EVAL_LOSS, M.EVAL_EARLY_LOSS, M.EVAL_REST_LOSS, M.EVAL_CUE_FLIPPED_LOSS)
ACCURACIES = (M.TRAIN_ACC, M.EVAL_ACC, M.EVAL_EARLY_ACC, M.EVAL_REST_ACC, M.EVAL_CUE_FLIPPED_ACC)
NOT_IN_CONFIG = ("tracker", "fail_at_step")  # plumbing: neither changes what a run computes
# an unnamed study's directory: <date>/<time>
DATE_DIR, TIME_DIR = re.compile(r"\d{4}-\d{2}-\d{2}"), re.compile(r"\d{2}-\d{2}-\d{2}")


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


def windowed(key: str) -> bool:
    """Whether W&B gets ``key`` as its mean over the logging window (else: the value at the logged step)."""
    return (key.startswith(("train/", "opt/")) and key != M.LR) or key == M.STEP_TIME


def wandb_config(config: Config) -> dict[str, Any]:
    """The resolved config as W&B's flat config, without ablate's plumbing (``NOT_IN_CONFIG``).

    ``smoke`` is kept only on smoke runs (3 updates: a different computation), ``study`` only when named (the
    group names an unnamed study).
    """
    d = {k: v for k, v in config_dict(config).items() if k not in NOT_IN_CONFIG}
    if not d.get("smoke"):
        d.pop("smoke", None)
    if not d.get("study"):
        d.pop("study", None)
    return flatten(d)


def is_unnamed(sweep_dir: Path) -> bool:
    """An unnamed study's directory: ``.../<date>/<time>`` (Hydra's ``${now:%Y-%m-%d}/${now:%H-%M-%S}``)."""
    return bool(DATE_DIR.fullmatch(sweep_dir.parent.name) and TIME_DIR.fullmatch(sweep_dir.name))


def study_group(study: dict[str, Any]) -> str:
    """The W&B group of a run: its study, or ``runs`` for a single run.

    An unnamed study (``outputs/studies/2026-11-30/13-05-07``) by its factors and start:
    ``warmup-optimizer 2026-11-30 13:05:07`` (``study 2026-11-30 13:05:07`` when nothing is swept); any other
    study directory (a named study, an explicit ``hydra.sweep.dir``) as ``<parent>_<name>``
    (``studies_warmup-vs-optimizer``), as before.
    """
    sweep_dir = study.get("sweep_dir")
    if not sweep_dir:
        return "runs"
    path = Path(sweep_dir)
    if is_unnamed(path):
        factors = "-".join(str(f) for f in study.get("factors") or []) or "study"
        return f"{factors} {path.parent.name} {path.name.replace('-', ':')}"
    return f"{path.parent.name}_{path.name}"


def run_in_study(run_dir: Path, study: dict[str, Any]) -> str:
    """The run directory without a local path: relative to its study (``optimizer=adam,warmup=100``), else
    ``<date>/<time>`` for a single run in Hydra's default layout, else the directory's name."""
    sweep_dir = study.get("sweep_dir")
    if sweep_dir:
        try:
            return run_dir.resolve().relative_to(Path(sweep_dir).resolve()).as_posix()
        except ValueError:
            pass
    return f"{run_dir.parent.name}/{run_dir.name}" if is_unnamed(run_dir) else run_dir.name


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
    """Sends a run's config, its metrics (window means and points, see the module), summary and status to W&B."""

    def __init__(self, config: Config, run_dir: Path) -> None:
        self.config = config
        self.run_dir = run_dir
        self.log_every = config.tracker.log_every
        self.flush_every_s = config.tracker.flush_every_s
        self._buffer: list[dict[str, Any]] = []
        self._sums: dict[str, float] = {}  # the open logging window: sum and count of each windowed metric
        self._counts: dict[str, int] = {}
        self._window_end: tuple[int, Any] = (-1, None)  # its last step and that step's opt/lr
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
            for names, best in ((LOSSES, "min"), (ACCURACIES, "max")):
                for name in names:
                    self.run.define_metric(name, step_metric="step", summary=f"{best},last")
            self.run.summary.update(
                {
                    "run_id": info["run_id"],
                    "started_at": info.get("started_at"),
                    "run": run_in_study(self.run_dir, study),
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
                **wandb_config(self.config),
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
        """Add the step to the open window; send a point when the window closes or the line has eval/probe values.

        A window closes every ``log_every`` steps and at the last update; a line without train metrics (the
        final evaluation, one past the last update) first closes whatever window is still open.
        """
        if self.run is None:
            return
        means: dict[str, float] = {}
        if M.TRAIN_LOSS not in metrics and self._counts:
            self._add(self._close_window())
        for key, value in metrics.items():
            if windowed(key) and isinstance(value, (int, float)):
                self._sums[key] = self._sums.get(key, 0.0) + value
                self._counts[key] = self._counts.get(key, 0) + 1
        if self._counts:
            self._window_end = (step, metrics.get(M.LR))
            if step % self.log_every == 0 or step == self.config.steps - 1:
                means = self._close_window()
        sparse = any(key.startswith(("eval/", "probe/")) for key in metrics)
        if not means and not sparse:
            return
        self._add({"step": step, **{k: v for k, v in metrics.items() if not windowed(k)}, **means})
        now = time.monotonic()
        if now - self._flushed_at >= self.flush_every_s:
            self._flush()
            self._flushed_at = now

    def _add(self, point: dict[str, Any]) -> None:
        """Buffer ``point``; one point per step (an eval line where a run stopped, then its last window)."""
        if self._buffer and self._buffer[-1]["step"] == point["step"]:
            self._buffer[-1].update(point)
        else:
            self._buffer.append(point)

    def _close_window(self) -> dict[str, Any]:
        """The open window's point: ``step`` and ``opt/lr`` of its last step, each windowed metric's mean."""
        step, lr = self._window_end
        point = {"step": step, **({M.LR: lr} if lr is not None else {})}
        point.update({key: total / self._counts[key] for key, total in self._sums.items()})
        self._sums, self._counts = {}, {}
        return point

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
        if self._counts:  # a run that stopped early (diverged, failed): its last, shorter window
            self._add(self._close_window())
        self._flush()
        if self.run is None:
            return
        try:
            summary = {k: v for k, v in (result.get("summary") or {}).items() if v is not None}
            self.run.summary.update({**summary, "status": result["status"], "error": result.get("error")})
            self.run.finish(exit_code=1 if result["status"] == "failed" else 0)
        except Exception as err:
            self._warn("finish", err)
