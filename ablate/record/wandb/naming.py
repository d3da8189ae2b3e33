"""How a run appears on the W&B dashboard: its group, name, tags, flat config and attempt id (torch-free:
``analysis.to_wandb`` uses it too).

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
**One W&B run per attempt.** The W&B ``id`` is ``<run_id>-<yymmdd-HHMMSS of the attempt's start, UTC>-<4 hex>``
(``attempt_id``), so a run killed and re-run in the same run directory writes a second W&B run beside the first
(``<run dir>/wandb/offline-run-*-<id>``) instead of appending to its history: a dashboard never shows a mixed
history. ``run_id`` is in each attempt's config and summary (filter or group by it to see every attempt of one
config); ``python -m ablate.sync`` uploads every attempt.
"""

from __future__ import annotations

import re
import secrets
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ablate.config import Config, config_dict

GROUPS_IN_NAME = ("optimizer", "skew", "model", "data", "schedule", "probes")
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
