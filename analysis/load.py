"""Reading run records. Only JSON and text: no torch, no pickle, nothing executed from the directory."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

METRICS_FILE = "metrics.jsonl"
RESULT_FILE = "result.json"


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    """Every complete line of a run's ``metrics.jsonl``, in order.

    A line that does not parse (the partial last line of a killed run, or a corrupt one) is skipped with a
    warning naming the file and line number; every other line is kept.
    """
    path = Path(run_dir) / METRICS_FILE
    rows: list[dict[str, Any]] = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                warnings.warn(f"{path}:{number}: skipped a line that is not complete JSON", stacklevel=2)
                continue
            if isinstance(row, dict) and "step" in row:
                rows.append(row)
            else:
                warnings.warn(f"{path}:{number}: skipped a line without a step", stacklevel=2)
    return rows


def read_result(run_dir: str | Path) -> dict[str, Any] | None:
    """A run's ``result.json``, or None if the run has none (it never started writing its record)."""
    path = Path(run_dir) / RESULT_FILE
    if not path.exists():
        return None
    return json.loads(path.read_text(encoding="utf-8"))
