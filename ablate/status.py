"""``python -m ablate.status <study dir>``: each grid point's state and the counts, readable while a study runs.

States: ``done`` (completed), ``diverged``, ``failed``, ``running`` (with its last logged step), ``killed``
(a ``running`` record whose process is gone from this host: killed, pre-empted or out of time; the next run of
the study's command re-runs it) and ``missing`` (no record yet). The grid is the last multirun's
(``study.json``); a study without one (older records) shows every record found. When ``seed`` is a factor,
seeds are the columns and every other factor combination a row.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from ablate.plan import Record, index_records, state

STATE_ORDER = ("done", "diverged", "failed", "running", "killed", "missing")


def last_step(run_dir: Path) -> int | None:
    """The step of the last complete line of ``metrics.jsonl`` (reads only the file's tail)."""
    path = run_dir / "metrics.jsonl"
    if not path.exists():
        return None
    with open(path, "rb") as f:
        f.seek(0, 2)
        f.seek(max(0, f.tell() - 8192))
        lines = f.read().decode("utf-8", errors="replace").splitlines()
    for line in reversed(lines):
        try:
            return int(json.loads(line)["step"])
        except (ValueError, KeyError, TypeError):
            continue
    return None


def cell_text(record: Record | None) -> str:
    text = state(record)
    if record is not None and text == "done" and (record.result.get("summary") or {}).get("outcome") == "untrained":
        text = "done (untrained)"  # finished, but no better than chance (ablate.outcome)
    if record is not None and text == "running":
        step = last_step(record.run_dir)
        steps = (record.result.get("summary") or {}).get("steps") or _steps(record.run_dir)
        text += f" {step if step is not None else 0}/{steps}" if steps else ""
    return text


def _steps(run_dir: Path) -> int | None:
    try:
        import yaml

        steps = (yaml.safe_load((run_dir / "config.yaml").read_text()) or {}).get("steps")
        return int(steps) if steps is not None else None
    except (OSError, TypeError, ValueError):
        return None


def grid_points(study_dir: Path, records: dict[str, Record]) -> tuple[list[str], list[dict[str, Any]]]:
    """The study's factors and its grid points ``{"run", "run_id", "values": {factor: value}}``."""
    stamp_path = study_dir / "study.json"
    stamp = json.loads(stamp_path.read_text()) if stamp_path.exists() else {}
    factors = list(stamp.get("factors") or [])
    if stamp.get("grid"):
        points = []
        for point in stamp["grid"]:
            values = dict(o.lstrip("+~").split("=", 1) for o in point["overrides"] if "=" in o)
            points.append({"run_id": point["run_id"], "run": point["run"], "values": values})
        return factors, points
    points = []
    for run_id, record in sorted(records.items(), key=lambda kv: str(kv[1].run_dir)):
        values = dict(o.lstrip("+~").split("=", 1) for o in record.result.get("overrides", []) if "=" in o)
        points.append({"run_id": run_id, "run": str(record.run_dir.relative_to(study_dir)), "values": values})
    return factors, points


def render(study_dir: Path) -> str:
    records = index_records(study_dir)
    factors, points = grid_points(study_dir, records)
    cells = [(p, cell_text(records.get(p["run_id"]))) for p in points]
    counts = Counter(text.split(" ")[0] for _, text in cells)
    head = f"study {study_dir}: {len(cells)} runs: " + ", ".join(
        f"{counts[s]} {s}" for s in STATE_ORDER if counts.get(s)
    )
    untrained = sum(text == "done (untrained)" for _, text in cells)
    if untrained:
        head += f"; {untrained} of the done untrained (no better than chance)"
    if not cells:
        return head + " (no grid and no run records yet)"
    rows_factors = [f for f in factors if f != "seed"]
    if "seed" in factors:
        seeds = sorted({p["values"].get("seed", "") for p, _ in cells}, key=_natural)
        table: dict[tuple[str, ...], dict[str, str]] = {}
        for p, text in cells:
            key = tuple(p["values"].get(f, "") for f in rows_factors)
            table.setdefault(key, {})[p["values"].get("seed", "")] = text
        header = [*rows_factors, *(f"seed={s}" for s in seeds)]
        body = [[*key, *(by_seed.get(s, "") for s in seeds)] for key, by_seed in table.items()]
    else:
        header = [*(factors or ["run"]), "state"]
        body = [
            [*(p["values"].get(f, "") for f in factors), text] if factors else [p["run"], text] for p, text in cells
        ]
    widths = [max(len(str(r[i])) for r in [header, *body]) for i in range(len(header))]
    lines = [head, "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in body]
    return "\n".join(lines)


def _natural(value: str) -> tuple[int, float | str]:
    try:
        return 0, float(value)
    except ValueError:
        return 1, value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ablate.status", description=__doc__.split("\n")[0])
    parser.add_argument("study_dir", type=Path, help="a study directory, e.g. outputs/studies/<name>")
    args = parser.parse_args(argv)
    if not args.study_dir.is_dir():
        print(
            f"error: {args.study_dir} is not a directory; pass a study directory (outputs/studies/...)", file=sys.stderr
        )
        return 2
    print(render(args.study_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
