"""A study: the runs of one multirun in one sweep directory, and its ``summary.csv``.

The sweeper stamps the sweep directory with a fresh ``multirun_id`` in ``study.json`` once the whole grid
is valid (a rejected command writes nothing); every run copies that stamp into its ``result.json``. Each
command's own stamp is also kept as ``.multiruns/<multirun_id>.json`` and handed to its jobs (environment
``ABLATE_MULTIRUN_ID``), so two commands working on one study at once never mislabel each other's runs.
``StudySummaryCallback`` (a Hydra callback) writes ``summary.csv`` at the end: one row per grid point (swept
factors, state, summary metrics); records left in the directory by other grids are counted and named in a
note instead of mixed in silently. An interrupted study (Ctrl-C, SIGTERM, a full disk) gets its summary
from ``finish_study`` in ``python -m ablate``.
"""

from __future__ import annotations

import csv
import io
import json
import sys
import uuid
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from ablate.record.files import atomic_write_json, atomic_write_text
from ablate.record.tracking import RESULT_FILE

STUDY_FILE = "study.json"
MULTIRUNS_DIR = ".multiruns"
MULTIRUN_ENV = "ABLATE_MULTIRUN_ID"
CURRENT: dict[str, Any] = {}  # this process's study stamp, once the sweeper has written it
SUMMARY_FILE = "summary.csv"
SUMMARY_METRICS = (
    "outcome",
    "final_eval_loss",
    "final_eval_acc",
    "best_eval_loss",
    "best_eval_acc",
    "final_train_loss",
    "steps_completed",
    "diverged_step",
    "skew_gap_end",
    "skew_gap_peak",
    "rest_recovery_step",
    "early_train_eval_gap",
    "cue_reliance_end",
    "cue_reliance_final",
    "chance_loss",
    "peak_loss_ratio",
    "peak_lr",
)


def read_study_stamp(sweep_dir: Path, multirun_id: str | None = None) -> dict[str, Any]:
    """The stamp of multirun ``multirun_id`` (a job's own command), else the study's latest (``study.json``)."""
    path = sweep_dir / MULTIRUNS_DIR / f"{multirun_id}.json" if multirun_id else sweep_dir / STUDY_FILE
    if not path.exists():
        path = sweep_dir / STUDY_FILE
    return json.loads(path.read_text()) if path.exists() else {}


def new_stamp(config: DictConfig, sweep_dir: Path, resume: bool) -> dict[str, Any]:
    """A fresh stamp for a multirun about to start in ``sweep_dir``."""
    factors, fixed = split_factors(config)
    return {
        "multirun_id": uuid.uuid4().hex,
        "factors": factors,
        "fixed_overrides": fixed,
        "sweep_dir": str(sweep_dir.resolve()),
        "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "resume": resume,
        "argv": sys.argv,
    }


def write_stamp(sweep_dir: Path, stamp: dict[str, Any]) -> None:
    """``study.json`` (the latest command's grid, read by status) and this command's own copy."""
    atomic_write_json(sweep_dir / MULTIRUNS_DIR / f"{stamp['multirun_id']}.json", stamp)
    atomic_write_json(sweep_dir / STUDY_FILE, stamp)
    CURRENT.clear()
    CURRENT.update(stamp)


def parse_override(override: str) -> tuple[str, str]:
    """``"+optimizer.beta2=0.99"`` -> ``("optimizer.beta2", "0.99")``."""
    key, _, value = override.partition("=")
    return key.lstrip("+~"), value


def split_factors(config: DictConfig) -> tuple[list[str], list[str]]:
    """The keys a multirun sweeps (its factors), and the overrides every run shares."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    arguments = [f"{k}={v}" for k, v in (config.hydra.sweeper.get("params") or {}).items()]
    arguments += list(config.hydra.overrides.task)
    factors, fixed = [], []
    for o in OverridesParser.create().parse_overrides(arguments):
        if o.is_sweep_override():
            factors.append(o.key_or_group)
        else:
            fixed.append(o.input_line or f"{o.key_or_group}={o.value()}")
    return factors, fixed


def run_records(sweep_dir: Path) -> list[tuple[Path, dict[str, Any]]]:
    """Every ``result.json`` under ``sweep_dir`` (superseded records excluded), with its run directory."""
    found = []

    def natural(path: Path) -> list[tuple[int, int | str]]:  # run 2 before run 10
        return [(0, int(part)) if part.isdigit() else (1, part) for part in path.relative_to(sweep_dir).parts]

    for path in sorted(sweep_dir.rglob(RESULT_FILE), key=natural):
        if "superseded" in path.relative_to(sweep_dir).parts:
            continue
        try:
            found.append((path.parent, json.loads(path.read_text())))
        except (OSError, json.JSONDecodeError) as err:
            print(f"warning: unreadable run record {path}: {err}", file=sys.stderr)
    return found


def summary_rows(sweep_dir: Path, stamp: dict[str, Any]) -> tuple[list[dict[str, Any]], list[Path]]:
    """One row per grid point of this multirun (its record, whichever multirun wrote it), and the run
    directories in the study that are not part of this grid (left by earlier multiruns)."""
    from ablate.study.plan import index_records, record_status

    records = index_records(sweep_dir)
    factors = stamp.get("factors") or []
    rows, used = [], set()
    for point in stamp.get("grid") or []:
        record = records.get(point["run_id"])
        result = record.result if record is not None else {}
        run_dir = record.run_dir if record is not None else sweep_dir / point["run"]
        used.add(run_dir)
        row: dict[str, Any] = {"run": str(run_dir.relative_to(sweep_dir))}
        values = dict(parse_override(o) for o in point["overrides"])
        row.update({key: values.get(key) for key in factors})
        summary = result.get("summary") or {}
        row.update(status=record_status(record), run_id=point["run_id"])
        row["ran"] = (result.get("study") or {}).get("multirun_id") == stamp.get("multirun_id")
        row.update({key: summary.get(key) for key in SUMMARY_METRICS})
        row.update(wall_time_s=result.get("wall_time_s"), error=result.get("error"))
        rows.append(row)
    stale = sorted({r.run_dir for r in records.values()} - used)
    return rows, stale


def write_summary(path: Path, rows: list[dict[str, Any]]) -> None:
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buffer.getvalue())


def report(rows: list[dict[str, Any]], stale: list[Path], summary_path: Path) -> str:
    counts = Counter(str(row["status"]) for row in rows)
    ran = sum(bool(row["ran"]) for row in rows)
    before = sum(not row["ran"] and row["status"] != "missing" for row in rows)
    lines = [
        f"study: {len(rows)} runs ({ran} ran now, {before} recorded before): "
        + ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    ]
    for row in rows:
        if row["status"] == "missing":
            lines.append(f"  missing: {row['run']}: no run record (its job ended before the run started; see above)")
        elif row["status"] == "killed":
            lines.append(
                f"  killed: {row['run']}: its process ended without closing the record (killed, pre-empted "
                "or out of time); the same command re-runs it"
            )
        elif row["status"] == "running":
            lines.append(f"  running: {row['run']}: another command is running it now")
        elif row["status"] not in ("completed", "diverged"):
            lines.append(f"  {row['status']}: {row['run']}: {row.get('error') or 'no error recorded'}")
    if stale:
        lines.append(
            f"  note: {len(stale)} run record(s) in this directory are not part of this grid and were left out "
            f"of {SUMMARY_FILE}: {', '.join(p.name for p in stale[:8])}{' ...' if len(stale) > 8 else ''}"
        )
    lines.append(f"summary: {summary_path}")
    return "\n".join(lines)


def finish_study(sweep_dir: Path, stamp: dict[str, Any]) -> tuple[int, str]:
    """Write ``summary.csv`` for the grid of ``stamp``; return the number of runs not done and the report."""
    rows, stale = summary_rows(sweep_dir, stamp)
    write_summary(sweep_dir / SUMMARY_FILE, rows)
    not_done = sum(row["status"] not in ("completed", "diverged") for row in rows)
    return not_done, report(rows, stale, sweep_dir / SUMMARY_FILE)


class StudySummaryCallback(Callback):
    """Writes ``summary.csv`` at the end of a multirun (the sweeper stamps the study at its start)."""

    failed_runs = 0  # of the last multirun in this process; ``python -m ablate`` exits non-zero if > 0

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        stamp = dict(CURRENT) or read_study_stamp(sweep_dir)
        StudySummaryCallback.failed_runs, text = finish_study(sweep_dir, stamp)
        print(text, file=sys.stderr, flush=True)
