"""``python -m ablate.status <study dir>``: each grid point's state and the counts, readable while a study runs.

States: ``done`` (completed), ``diverged``, ``failed``, ``running`` (with its last logged step), ``killed``
(a ``running`` record whose process is gone from this host: killed, pre-empted or out of time; the next run of
the study's command re-runs it), ``unreadable`` (a ``result.json`` that is not valid JSON or not a run record:
named below the table) and ``missing`` (no record yet). The grid is the last multirun's (``study.json``); a study
without one (older records) shows every record found. When ``seed`` is a factor, seeds are the columns and every
other factor combination a row. The study is a directory or a name: ``<name>`` is looked up as
``outputs/studies/<name>`` when no such path exists. A directory that holds no study is a one-line error (exit 2).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from ablate.study.names import STUDIES_ROOT, STUDY_FILE, list_studies
from ablate.study.plan import RESULT_FILE, Record, index_records, state

STATE_ORDER = ("done", "diverged", "failed", "running", "killed", "unreadable", "missing")
STUDY_HINT = "pass a study directory such as outputs/studies/<name>, or a study's name"


class StatusError(ValueError):
    """The path given is not a study: printed as one line, exit status 2."""


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
        text = "done (untrained)"  # finished, but no better than chance (ablate.run.outcome)
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


def unreadable_reason(path: Path) -> str | None:
    """Why an existing ``result.json`` is not a run record (its JSON error, or what it lacks); None if it is one or
    if there is no such file. ``plan.index_records`` skips such files; here they are named, not taken for missing."""
    try:
        result = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as err:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        return (str(err).splitlines() or [type(err).__name__])[0]
    if not isinstance(result, dict):
        return f"not a run record (a JSON {type(result).__name__}, not an object)"
    if not isinstance(result.get("run_id"), str):
        return "not a run record (no run_id)"
    return None


def read_stamp(study_dir: Path) -> tuple[dict[str, Any], str | None]:
    """The study's ``study.json`` ({} when there is none), and why it could not be read, if it could not."""
    path = study_dir / STUDY_FILE
    try:
        stamp = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}, None
    except (OSError, ValueError) as err:
        return {}, f"{path}: unreadable ({(str(err).splitlines() or [type(err).__name__])[0]})"
    if not isinstance(stamp, dict):
        return {}, f"{path}: unreadable (a JSON {type(stamp).__name__}, not an object)"
    return stamp, None


def stray_results(study_dir: Path, records: dict[str, Record]) -> dict[str, str]:
    """``result.json`` files outside every indexed record that are not run records: run (relative dir) -> why."""
    indexed = {record.run_dir for record in records.values()}
    found = {}
    for path in study_dir.rglob(RESULT_FILE):
        if path.parent in indexed or "superseded" in path.relative_to(study_dir).parts:
            continue
        why = unreadable_reason(path)
        if why is not None:
            found[path.parent.relative_to(study_dir).as_posix()] = why
    return found


def values_of(run: str) -> dict[str, str]:
    """A run directory's factor values from its name (``warmup=100,seed=3``, ``plan.run_dir_name``), else {}."""
    parts = Path(run).name.split(",")
    return dict(part.split("=", 1) for part in parts) if all("=" in part for part in parts) else {}


def grid_points(
    study_dir: Path, records: dict[str, Record], stamp: dict[str, Any] | None = None
) -> tuple[list[str], list[dict[str, Any]]]:
    """The study's factors and its grid points ``{"run", "run_id", "values": {factor: value}}``."""
    stamp = read_stamp(study_dir)[0] if stamp is None else stamp
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
    if records:  # damaged records beside readable ones: shown, so that no run is silently left out
        points += [{"run_id": None, "run": run, "values": values_of(run)} for run in stray_results(study_dir, records)]
    return factors, points


def render(study_dir: Path) -> str:
    """The status table of a study directory. Raises StatusError for a directory that holds no study."""
    records = index_records(study_dir)
    stamp, stamp_problem = read_stamp(study_dir)
    if not records and not stamp:
        raise StatusError(not_a_study(study_dir, stamp_problem))
    factors, points = grid_points(study_dir, records, stamp)
    cells, unreadable = [], []
    for point in points:
        record = records.get(point["run_id"]) if point["run_id"] else None
        why = unreadable_reason(study_dir / point["run"] / RESULT_FILE) if record is None else None
        if why is not None:
            unreadable.append(f"unreadable {RESULT_FILE} at {study_dir / point['run'] / RESULT_FILE}: {why}")
        cells.append((point, "unreadable" if why is not None else cell_text(record)))
    counts = Counter(text.split(" ")[0] for _, text in cells)
    shown = [*STATE_ORDER, *sorted(set(counts) - set(STATE_ORDER))]  # a state added to plan.state shows too
    head = f"study {study_dir}: {len(cells)} runs: " + ", ".join(f"{counts[s]} {s}" for s in shown if counts.get(s))
    untrained = sum(text == "done (untrained)" for _, text in cells)
    if untrained:
        head += f"; {untrained} of the done untrained (no better than chance)"
    notes = [f"note: {stamp_problem}; showing the records found"] if stamp_problem else []
    notes += unreadable
    if not cells:
        return "\n".join([head + " (an empty grid and no run records yet)", *notes])
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
    return "\n".join(lines + notes)


def not_a_study(study_dir: Path, stamp_problem: str | None) -> str:
    """The one line for a directory with neither a study stamp nor a run record: what it holds instead."""
    strays = stray_results(study_dir, {})
    if strays:
        run, why = next(iter(strays.items()))
        more = f" (and {len(strays) - 1} more)" if len(strays) > 1 else ""
        found = f"unreadable {RESULT_FILE} at {study_dir / run / RESULT_FILE}: {why}{more}"
    elif stamp_problem:
        found = stamp_problem
    else:
        entries = sorted(p.name + ("/" if p.is_dir() else "") for p in study_dir.iterdir())
        found = f"found only {', '.join(entries[:8])}{' ...' if len(entries) > 8 else ''}" if entries else "it is empty"
    return (
        f"{study_dir} holds no study: no {STUDY_FILE} and no run records ({RESULT_FILE} files written by "
        f"python -m ablate); {found}; {STUDY_HINT}"
    )


def find_study(name: Path, root: Path = STUDIES_ROOT) -> Path:
    """A study given by path or by name: the path if it exists, else ``<root>/<name>`` (``study=<name>``'s
    directory). Raises StatusError, saying where it looked and which studies exist, when neither is a directory."""
    named = root / name
    if not name.exists() and not name.is_absolute() and named.exists():
        name = named
    if name.is_dir():
        return name
    if name.exists():
        raise StatusError(f"{name} is not a study: it is a file, not a directory; {STUDY_HINT}")
    where = str(name) if name.is_absolute() else f"{name} (nor {named})"
    listing = list_studies(root)
    hint = f"; {STUDY_HINT}" if listing.startswith("no study") else ""
    raise StatusError(f"{where} is not a study: no such directory; {listing}{hint}")


def _natural(value: str) -> tuple[int, float | str]:
    try:
        return 0, float(value)
    except ValueError:
        return 1, value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ablate.status", description=__doc__.split("\n")[0])
    parser.add_argument(
        "study_dir", type=Path, help="a study directory, e.g. outputs/studies/<name>, or a study's name"
    )
    args = parser.parse_args(argv)
    try:
        shown = render(find_study(args.study_dir))
    except StatusError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(shown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
