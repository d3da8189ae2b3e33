"""The Weights & Biases tracker: offline by default, never in the way of a run.

Only this file imports wandb (lazily, when ``tracker=wandb``). How runs are named and grouped is in
``naming``; the offline fallback for an unreachable W&B in ``offline``. What each run sends:

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

If W&B fails to start even offline, or fails to log, the tracker warns once and goes quiet; the run goes on.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

from ablate.config import Config
from ablate.record.wandb.naming import attempt_id, provenance_keys, run_in_study, run_name, study_group, wandb_config
from ablate.record.wandb.offline import mark_study_offline, offline_marker, study_offline, sync_hint, told_offline
from ablate.run import metrics as M

# W&B summarises these by their best and their last value (define_metric), not by the last alone
LOSSES = (M.TRAIN_LOSS, M.EVAL_LOSS, M.EVAL_EARLY_LOSS, M.EVAL_REST_LOSS, M.EVAL_CUE_FLIPPED_LOSS)
ACCURACIES = (M.TRAIN_ACC, M.EVAL_ACC, M.EVAL_EARLY_ACC, M.EVAL_REST_ACC, M.EVAL_CUE_FLIPPED_ACC)


def windowed(key: str) -> bool:
    """Whether W&B gets ``key`` as its mean over the logging window (else: the value at the logged step)."""
    return (key.startswith(("train/", "opt/")) and key != M.LR) or key == M.STEP_TIME


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
            if told not in told_offline:  # e.g. another launcher worker: one short line
                told_offline.add(told)
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
                told_offline.add(told)
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
            reinit="create_new",  # a stack keeps one W&B run open per member in one process
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
