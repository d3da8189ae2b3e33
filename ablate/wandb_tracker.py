"""The Weights & Biases tracker: offline by default, never in the way of a run.

Only this file imports wandb (lazily, when ``tracker=wandb``). Layout for dashboards: ``project`` from config,
``group`` = the study (the sweep directory, ``<date>_<time>``; ``runs`` for single runs), ``job_type=train``,
``name`` built from the study's factors (``adam-warmup100-cluster-s0``), W&B ``id`` = the run's ``run_id`` (a
re-run of the same config continues the same W&B run), ``tags`` = ``factor=value``, and the resolved config
flattened to dotted keys (``optimizer.name``, ``skew.strength``). ``step`` (the optimizer step) is the x-axis
of every chart. W&B gets a subsample -- every ``tracker.log_every``-th line and every line with held-out or
probe metrics -- because each ``log`` call costs about a quarter of a default MLP step; the local run record
keeps every step. If W&B fails to start or to log, the tracker warns once and goes quiet; the run goes on.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

from ablate.config import Config, config_dict

GROUPS_IN_NAME = ("optimizer", "skew", "model", "data", "schedule", "probes")


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
        os.environ["WANDB_MODE"] = mode  # set before wandb starts: init(mode=...) alone still calls home at exit
        study = info.get("study") or {}
        factors = study.get("factors")
        overrides = info.get("overrides", [])
        try:
            import wandb

            self.run = wandb.init(
                project=cfg.project,
                entity=cfg.entity or None,
                group=study_group(study),
                job_type="train",
                name=run_name(overrides, factors),
                id=info["run_id"],
                resume="allow",
                tags=[o.lstrip("+~") for o in overrides if factors is None or o.partition("=")[0] in factors],
                config={**flatten(config_dict(self.config)), **provenance_keys(info.get("provenance") or {})},
                dir=str(self.run_dir),
                mode=mode,  # type: ignore[arg-type]  # validated: offline, online or disabled
                settings=wandb.Settings(
                    init_timeout=cfg.init_timeout_s,
                    console="off",
                    x_save_requirements=cfg.save_requirements,
                    x_disable_stats=not cfg.system_metrics,
                    disable_git=True,  # 4 git subprocesses per init; the commit is in the config below
                ),
            )
            self.run.define_metric("step")
            self.run.define_metric("*", step_metric="step")
            self.run.summary.update({"run_dir": str(self.run_dir), "warmup_steps": info.get("warmup_steps")})
        except Exception as err:  # W&B must never break a run
            self._warn("start", err)

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
