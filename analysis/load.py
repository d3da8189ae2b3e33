"""Reading run records into tables. Only JSON and YAML text: no torch, no pickle, nothing executed from a directory.

``load_study(paths)`` reads every run record of one or several studies into two tidy pandas tables:

*runs*, one row per run record (a directory holding ``result.json``):

============================  ==============================================================================
column                        content (dtype)
============================  ==============================================================================
``study``                     the study directory's name (str; its full path when two studies share a name)
``run``                       the run directory relative to the study directory, e.g. ``3`` (str)
``run_id``                    16 hex digits of the resolved config's hash (str)
``status``                    ``completed``, ``diverged``, ``failed`` or ``running`` (str)
``error``                     a failed run's exception, type and first line (str, else missing)
factors                       ``optimizer``, ``warmup``, ``warmup_shape``, ``lr``, ``schedule``, ``skew``,
                              ``model``, ``data``, ``seed``, ``steps``, ``batch_size``, then every other key a
                              study lists in its ``factors`` (e.g. ``optimizer.beta2``): read from the run's own
                              ``config.yaml`` (str, int64 or float64; missing where a config lacks the key)
``warmup_steps``              the resolved warmup length W from ``result.json`` (``warmup=auto`` resolved)
summary metrics               ``final_eval_loss``, ``best_eval_acc``, ``diverged_step``, ... (float64)
``wall_time_s``               seconds the run took (float64)
``started_at``, ``ended_at``  timestamps (datetime64, UTC)
``multirun_id``, ``label``    the multirun that wrote the record, and the run's console label (str)
provenance                    ``git_commit``, ``git_dirty``, ``host``, ``device``
``run_dir``                   the absolute run directory as found now (str)
============================  ==============================================================================

*history*, one row per logged step of a run: ``study`` and ``run`` (categorical; join on both with *runs*),
``step`` (int64) and one float32 column per metric name (``train/loss``, ``eval/loss``, ``opt/lr``, ...), missing
where a step did not log that metric (``eval/*`` only every ``eval_every`` steps). Wide rather than long
(``run, step, metric, value``): one row per step is what plots and time-to-target read, it keeps ``step`` once
instead of once per metric, and float32 halves the memory of the largest table (1,000 runs of 1,000 steps: about
60 MB). Float32 keeps 7 significant digits; the summary metrics in *runs* keep the full float64 values.

Factor values come from each run's ``config.yaml`` (a dotted key; a config group such as ``optimizer`` stands
for ``optimizer.name``; ``warmup=auto`` becomes the resolved ``warmup_steps``), never from the override strings:
a run record of an earlier multirun in the same directory may lack an override its study did not sweep.
"""

from __future__ import annotations

import json
import os
import re
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

METRICS_FILE = "metrics.jsonl"
RESULT_FILE = "result.json"
CONFIG_FILE = "config.yaml"
STUDY_FILE = "study.json"

DIGITS = re.compile(r"(\d+)")

# Directories inside a study that never hold its run records.
IGNORED_DIRS = frozenset({"superseded", ".hydra", "wandb", "report"})

# Always columns of the runs table, in this order (a config group stands for its ``name``).
STANDARD_FACTORS = (
    "optimizer",
    "warmup",
    "warmup_shape",
    "lr",
    "schedule",
    "skew",
    "model",
    "data",
    "seed",
    "steps",
    "batch_size",
)

SUMMARY_METRICS = (
    "outcome",
    "final_eval_loss",
    "final_eval_acc",
    "best_eval_loss",
    "best_eval_loss_step",
    "best_eval_acc",
    "best_eval_acc_step",
    "first_train_loss",
    "final_train_loss",
    "skew_end_step",
    "skew_gap_end",
    "skew_gap_peak",
    "skew_gap_peak_step",
    "rest_recovery_step",
    "early_train_eval_gap",
    "cue_reliance_end",
    "cue_reliance_final",
    "chance_loss",
    "chance_acc",
    "peak_train_loss",
    "peak_train_loss_step",
    "peak_loss_ratio",
    "peak_lr",
    "sharpness_at_init",
    "steps_completed",
    "diverged_step",
    "divergence_reason",
)

# libyaml's safe loader when PyYAML was built with it (several times faster), else the pure-Python one.
SAFE_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

PROVENANCE_COLUMNS = ("git_commit", "git_dirty", "host", "device")

# Which of two records with the same run_id to keep: the lower rank wins (a result beats an error beats nothing).
STATUS_RANK = {"completed": 0, "diverged": 0, "failed": 1, "running": 2}


class StudyError(ValueError):
    """A path given as a study is not one (not a directory, or no run records under it)."""


@dataclass
class Study:
    """The run records of one or more studies, as tables (see the module docstring for their columns).

    ``incomplete`` lists run directories without ``result.json`` and ``unreadable`` the ``result.json`` files that
    are not run records (not valid JSON, or JSON without ``run_id`` and ``status``), each with the reason: both are
    left out of both tables. ``factors`` lists the factor columns whose value differs between runs (``seed``
    included when it varies).
    """

    runs: pd.DataFrame
    history: pd.DataFrame
    incomplete: list[Path]
    factors: list[str]
    unreadable: dict[Path, str] = field(default_factory=dict)

    @property
    def cell_factors(self) -> list[str]:
        """The varying factors other than ``seed``: the columns that define a cell whose seeds are replicates."""
        return [factor for factor in self.factors if factor != "seed"]


# ---------------------------------------------------------------------------------------------------- one run


def parse_metrics_text(text: str, path: Path) -> list[dict[str, Any]]:
    """The complete lines of a ``metrics.jsonl`` text, in order; a bad line is skipped with a warning.

    Fast path: the lines joined into one JSON array, parsed by one ``json.loads`` call. If that fails, or does not
    give exactly one object with a ``step`` per line (two halves of a broken line could join into one), every line
    is parsed on its own and each bad one is reported as ``<file>:<line number>``.
    """
    lines = [line for line in text.splitlines() if line.strip()]
    try:
        rows = json.loads("[" + ",".join(lines) + "]")
    except json.JSONDecodeError:
        rows = None
    if rows is not None and len(rows) == len(lines) and all(isinstance(r, dict) and "step" in r for r in rows):
        return rows
    return parse_metrics_lines(text, path)


def parse_metrics_lines(text: str, path: Path) -> list[dict[str, Any]]:
    """``parse_metrics_text``'s slow path: one ``json.loads`` per line, warning about each line it skips."""
    rows: list[dict[str, Any]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            warnings.warn(f"{path}:{number}: skipped a line that is not complete JSON", stacklevel=4)
            continue
        if isinstance(row, dict) and "step" in row:
            rows.append(row)
        else:
            warnings.warn(f"{path}:{number}: skipped a line without a step", stacklevel=4)
    return rows


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    """Every complete line of a run's ``metrics.jsonl``, in order.

    A line that does not parse (the partial last line of a killed run, or a corrupt one) is skipped with a
    warning naming the file and line number; every other line is kept.
    """
    path = Path(run_dir) / METRICS_FILE
    return parse_metrics_text(path.read_text(encoding="utf-8", errors="replace"), path)


def read_result(run_dir: str | Path) -> dict[str, Any] | None:
    """A run's ``result.json``, or None if the run has none (it never started writing its record)."""
    path = Path(run_dir) / RESULT_FILE
    if not path.exists():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def read_config(run_dir: Path) -> dict[str, Any]:
    """A run's resolved ``config.yaml`` (safe YAML: plain data only), or {} with a warning if it is unreadable."""
    path = run_dir / CONFIG_FILE
    try:
        config = yaml.load(path.read_text(encoding="utf-8"), Loader=SAFE_LOADER)
    except FileNotFoundError:
        warnings.warn(f"{path}: missing; the run's factor values are unknown", stacklevel=2)
        return {}
    except (OSError, yaml.YAMLError) as err:
        reason = str(err).splitlines()[0]
        warnings.warn(f"{path}: unreadable ({reason}); the run's factor values are unknown", stacklevel=2)
        return {}
    return config if isinstance(config, dict) else {}


def config_value(config: dict[str, Any], key: str) -> Any:
    """The value of a dotted ``key`` in a nested config; a config group (a mapping) stands for its ``name``.

    A list becomes its JSON text (``[128, 128]``) so that it can label a cell; a missing key gives None.
    """
    value: Any = config
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    if isinstance(value, dict):
        return value.get("name")
    if isinstance(value, list):
        return json.dumps(value)
    return value


def factor_value(config: dict[str, Any], result: dict[str, Any], key: str) -> Any:
    """A factor's value for one run: from its config, with ``warmup=auto`` resolved to ``warmup_steps``."""
    value = config_value(config, key)
    if key == "warmup" and value == "auto":
        return result.get("warmup_steps")
    return value


def run_row(study: str, study_dir: Path, run_dir: Path, result: dict[str, Any], factors: list[str]) -> dict[str, Any]:
    """One row of the runs table: identity, status, factor values, summary metrics, time and provenance."""
    config = read_config(run_dir)
    summary = result.get("summary") or {}
    provenance = result.get("provenance") or {}
    row: dict[str, Any] = {
        "study": study,
        "run": run_dir.relative_to(study_dir).as_posix(),
        "run_id": result.get("run_id"),
        "status": result.get("status"),
        "error": result.get("error"),
    }
    row.update({key: factor_value(config, result, key) for key in factors})
    row["warmup_steps"] = result.get("warmup_steps")
    row.update({key: summary.get(key) for key in SUMMARY_METRICS})
    row.update({key: value for key, value in summary.items() if key not in row})
    row["wall_time_s"] = result.get("wall_time_s")
    row["started_at"] = result.get("started_at")
    row["ended_at"] = result.get("ended_at")
    row["multirun_id"] = (result.get("study") or {}).get("multirun_id")
    row["label"] = result.get("label")
    row.update({key: provenance.get(key) for key in PROVENANCE_COLUMNS})
    row["run_dir"] = str(run_dir)
    return row


# ---------------------------------------------------------------------------------------------------- one study


def natural_key(path: Path) -> list[list[tuple[int, int | str]]]:
    """Sort key that puts run ``2`` before run ``10``, and ``warmup=20`` before ``warmup=100``."""
    return [[(0, int(chunk)) if chunk.isdigit() else (1, chunk) for chunk in DIGITS.split(part)] for part in path.parts]


def find_run_dirs(study_dir: Path) -> list[Path]:
    """Directories under ``study_dir`` that hold a run record or the start of one, in natural order.

    A run directory holds ``result.json``, ``metrics.jsonl``, ``config.yaml`` or Hydra's ``.hydra/`` folder, at
    any depth (the study directory itself only with ``result.json``: a single run's output directory);
    ``superseded/``, ``.hydra/``, ``wandb/`` and ``report/`` are not searched.
    """
    markers = {RESULT_FILE, METRICS_FILE, CONFIG_FILE}
    found = []
    for directory, subdirs, files in os.walk(study_dir):
        started = bool(markers.intersection(files)) or ".hydra" in subdirs
        if RESULT_FILE in files or (started and Path(directory) != study_dir):
            found.append(Path(directory))
        subdirs[:] = [name for name in subdirs if name not in IGNORED_DIRS]
    return sorted(found, key=lambda path: natural_key(path.relative_to(study_dir)))


def read_study_factors(study_dir: Path, results: Iterable[dict[str, Any]]) -> list[str]:
    """The factor keys a study's stamp (``study.json``) and its run records list, in order, without repeats."""
    listed: list[str] = []
    stamp = study_dir / STUDY_FILE
    try:
        listed += json.loads(stamp.read_text(encoding="utf-8")).get("factors") or []
    except FileNotFoundError:
        pass  # a study made before stamps, or a single run's directory: its records list the factors
    except (OSError, json.JSONDecodeError, AttributeError) as err:
        warnings.warn(f"{stamp}: unreadable ({err}); factors taken from the run records", stacklevel=2)
    for result in results:
        listed += (result.get("study") or {}).get("factors") or []
    keys = [key.lstrip("+~") for key in listed]
    return [key for key in dict.fromkeys(keys) if not key.startswith("hydra")]


def not_a_record(result: Any) -> str | None:
    """Why a parsed ``result.json`` is not a run record written by ``python -m ablate``, or None if it is one."""
    if not isinstance(result, dict):
        return f"not a run record (a JSON {type(result).__name__}, not an object)"
    missing = [key for key in ("run_id", "status") if not isinstance(result.get(key), str)]
    if missing:
        return f"not a run record (no {' and no '.join(missing)})"
    return None


def unreadable_text(path: Path, reason: str) -> str:
    """``unreadable result.json at <path>: <reason>``: the one way a bad record is named, in warnings and errors."""
    return f"unreadable {RESULT_FILE} at {path}: {reason}"


def describe_contents(study_dir: Path, incomplete: list[Path], unreadable: dict[Path, str] | None = None) -> str:
    """What a directory without run records holds, for the error message."""
    if unreadable:
        path, reason = next(iter(unreadable.items()))
        more = f" (and {len(unreadable) - 1} more)" if len(unreadable) > 1 else ""
        return unreadable_text(path, reason) + more
    if incomplete:
        names = ", ".join(str(path.relative_to(study_dir)) for path in incomplete[:5])
        more = " ..." if len(incomplete) > 5 else ""
        return f"found {len(incomplete)} run directories without {RESULT_FILE} ({names}{more})"
    entries = sorted(path.name + ("/" if path.is_dir() else "") for path in study_dir.iterdir())
    if not entries:
        return "the directory is empty"
    return f"found only {', '.join(entries[:8])}{' ...' if len(entries) > 8 else ''}"


STUDY_HINT = "pass a study directory such as outputs/studies/<name>"


def read_run_records(
    study_dir: Path,
) -> tuple[list[tuple[Path, dict[str, Any]]], list[Path], dict[Path, str]]:
    """The run records under a study directory (with their directories), the run directories without one, and the
    ``result.json`` files that are not run records, each with the reason (``not_a_record``, or its JSON error).

    Raises StudyError if the path is not a directory or holds no run record. An unreadable ``result.json`` is named
    in a warning and left out; it is never taken for a run without one.
    """
    if not study_dir.exists():
        raise StudyError(f"{study_dir} is not a study: no such directory; {STUDY_HINT}")
    if not study_dir.is_dir():
        raise StudyError(f"{study_dir} is not a study: it is a file, not a sweep directory; {STUDY_HINT}")
    records, incomplete, unreadable = [], [], {}
    for run_dir in find_run_dirs(study_dir):
        path = run_dir / RESULT_FILE
        try:
            result = read_result(run_dir)
            why = None if result is None else not_a_record(result)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            why = str(err).splitlines()[0] if str(err) else type(err).__name__
        if why is not None:
            unreadable[path] = why
            warnings.warn(unreadable_text(path, why) + "; left out", stacklevel=2)
        elif result is None:
            incomplete.append(run_dir)
        else:
            records.append((run_dir, result))
    if not records:
        raise StudyError(
            f"{study_dir} is not a study: no run records ({RESULT_FILE} files written by python -m ablate) under it; "
            f"{describe_contents(study_dir, incomplete, unreadable)}; {STUDY_HINT}"
        )
    return records, incomplete, unreadable


STUDIES_ROOT = Path("outputs/studies")  # where ``python -m ablate -m study=<name>`` writes, relative to the cwd


def list_studies(root: Path = STUDIES_ROOT, limit: int = 10) -> str:
    """The studies under ``root`` (directories with a ``study.json``, up to 3 levels down), for an error message.

    The same as ``ablate.study.names.list_studies``, written again on purpose: reading records imports neither
    torch nor ablate (tests/test_analysis_load.py), so analysis runs where only the records are."""
    found = sorted(
        {p.parent.relative_to(root).as_posix() for depth in (1, 2, 3) for p in root.glob("*/" * depth + STUDY_FILE)}
    )
    if not found:
        found = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    if not found:
        return f"no study under {root}"
    more = f" ... ({len(found)} in all)" if len(found) > limit else ""
    return f"studies under {root}: {', '.join(found[:limit])}{more}"


def find_study(name: str | Path, root: Path = STUDIES_ROOT) -> Path:
    """A study given by path or by name: the path if it exists, else ``<root>/<name>`` (``study=<name>``'s directory).

    Raises StudyError, saying where it looked and which studies exist, when neither exists.
    """
    path = Path(name)
    if path.exists():
        return path
    named = root / path
    if not path.is_absolute() and named.exists():
        return named
    where = str(path) if path.is_absolute() else f"{path} (nor {named})"
    listing = list_studies(root)
    hint = f"; {STUDY_HINT}" if listing.startswith("no study") else ""
    raise StudyError(f"{where} is not a study: no such directory; {listing}{hint}")


def keep_best_per_run_id(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows with distinct ``run_id`` in one study: of several records of one run, the best is kept, with a warning.

    Best: a result (``completed``/``diverged``) over ``failed`` over ``running``, then the latest ``ended_at``.
    """
    by_id: dict[Any, list[dict[str, Any]]] = {}
    for row in rows:
        by_id.setdefault(row["run_id"] or id(row), []).append(row)
    kept = []
    for run_id, same in by_id.items():
        best = min(same, key=lambda r: (STATUS_RANK.get(r["status"], 3), _negated_time(r["ended_at"])))
        if len(same) > 1:
            others = ", ".join(f"{r['run']} ({r['status']})" for r in same if r is not best)
            warnings.warn(
                f"study {best['study']}: {len(same)} run records share run_id {run_id}; kept run {best['run']} "
                f"({best['status']}, ended {best['ended_at']}), left out {others}",
                stacklevel=3,
            )
        kept.append(best)
    kept_ids = {id(row) for row in kept}
    return [row for row in rows if id(row) in kept_ids]


def _negated_time(timestamp: str | None) -> float:
    """Sort key: a later timestamp gives a smaller key; a missing one the largest."""
    try:
        return -pd.Timestamp(timestamp).timestamp()
    except (TypeError, ValueError):  # missing or not a timestamp
        return float("inf")


# ---------------------------------------------------------------------------------------------------- tables


# Runs whose metric lines are turned into one DataFrame at a time: one pandas call per chunk rather than per run
# (3x faster at 1,000 runs), while the lines of only one chunk are held as Python dicts (about 60 MB).
RUNS_PER_CHUNK = 100


def read_metric_rows(run_dir: Path) -> list[dict[str, Any]]:
    """A run's metric lines (``parse_metrics_text``), or none if it has no ``metrics.jsonl``."""
    path = run_dir / METRICS_FILE
    if not path.exists():
        return []
    return parse_metrics_text(path.read_text(encoding="utf-8", errors="replace"), path)


def as_history_dtypes(frame: pd.DataFrame) -> pd.DataFrame:
    """``step`` as int64 and every metric as float32; a value that is not a number becomes NaN."""
    metrics = [name for name in frame.columns if name != "step"]
    try:
        return frame.astype({"step": "int64", **dict.fromkeys(metrics, "float32")})
    except (TypeError, ValueError):  # a text value where a number belongs
        numbers = frame[metrics].apply(pd.to_numeric, errors="coerce").astype("float32")
        return pd.concat([frame[["step"]].astype("int64"), numbers], axis=1)


def history_frame(run_dirs: list[Path]) -> tuple[pd.DataFrame, np.ndarray]:
    """The metric lines of the given runs, concatenated in order, and the number of lines of each run."""
    frames = [pd.DataFrame({"step": np.array([], dtype=np.int64)})]
    lengths = []
    for first in range(0, len(run_dirs), RUNS_PER_CHUNK):
        rows: list[dict[str, Any]] = []
        for run_dir in run_dirs[first : first + RUNS_PER_CHUNK]:
            run_rows = read_metric_rows(run_dir)
            rows += run_rows
            lengths.append(len(run_rows))
        if rows:
            frames.append(as_history_dtypes(pd.DataFrame.from_records(rows)))
    history = as_history_dtypes(pd.concat(frames, ignore_index=True))
    return history, np.array(lengths, dtype=np.int64)


NUMBER_COLUMNS = tuple(key for key in SUMMARY_METRICS if key not in ("divergence_reason", "outcome")) + (
    "warmup_steps",
    "wall_time_s",
)
TEXT_COLUMNS = (
    "study",
    "run",
    "run_id",
    "status",
    "outcome",
    "error",
    "divergence_reason",
    "multirun_id",
    "label",
    "run_dir",
)


def repeat_as_categorical(labels: pd.Series, repeats: np.ndarray) -> pd.Categorical:
    """``labels[i]`` repeated ``repeats[i]`` times, as a categorical whose categories keep the labels' order."""
    categories = list(dict.fromkeys(labels))
    position = {label: code for code, label in enumerate(categories)}
    codes = np.array([position[label] for label in labels], dtype=np.int32)
    return pd.Categorical.from_codes(np.repeat(codes, repeats), categories=categories)


def to_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """The runs table from its rows: timestamps parsed; summary and text columns typed even when all missing."""
    runs = pd.DataFrame.from_records(rows).infer_objects()
    for column in NUMBER_COLUMNS:
        runs[column] = pd.to_numeric(runs[column], errors="coerce").astype("float64")
    for column in TEXT_COLUMNS:
        runs[column] = runs[column].astype("str")
    for column in ("started_at", "ended_at"):
        runs[column] = pd.to_datetime(runs[column], utc=True, format="ISO8601", errors="coerce")
    return runs


def varying(runs: pd.DataFrame, columns: Iterable[str]) -> list[str]:
    """The columns with more than one distinct value (a missing value counts as one)."""
    return [column for column in columns if runs[column].nunique(dropna=False) > 1]


def study_names(study_dirs: list[Path]) -> list[str]:
    """Each study's name: its directory's name, or its full path where two studies share a name."""
    names = [path.name for path in study_dirs]
    return [name if names.count(name) == 1 else str(path) for name, path in zip(names, study_dirs, strict=True)]


def load_study(paths: str | Path | Iterable[str | Path]) -> Study:
    """Read the run records of one or several studies (sweep directories) into a ``Study``.

    Runs of different studies may have different factors: the runs table has the union of their factor columns,
    each filled from every run's own config. Raises StudyError for a path that is not a study.
    """
    if isinstance(paths, str | Path):
        paths = [paths]
    study_dirs = list(dict.fromkeys(Path(path).resolve() for path in paths))
    if not study_dirs:
        raise StudyError("no study given: pass one or more sweep directories")
    found = [read_run_records(study_dir) for study_dir in study_dirs]
    factors = list(STANDARD_FACTORS)
    for study_dir, (records, _, _) in zip(study_dirs, found, strict=True):
        factors += read_study_factors(study_dir, (result for _, result in records))
    factors = list(dict.fromkeys(factors))

    rows: list[dict[str, Any]] = []
    incomplete: list[Path] = []
    unreadable: dict[Path, str] = {}
    for name, study_dir, (records, missing, bad) in zip(study_names(study_dirs), study_dirs, found, strict=True):
        study_rows = [run_row(name, study_dir, run_dir, result, factors) for run_dir, result in records]
        rows += keep_best_per_run_id(study_rows)
        incomplete += missing
        unreadable.update(bad)
    if incomplete:
        names = ", ".join(str(path) for path in incomplete[:3]) + (" ..." if len(incomplete) > 3 else "")
        warnings.warn(f"{len(incomplete)} run directories without {RESULT_FILE} left out: {names}", stacklevel=2)

    runs = to_frame(rows)
    history, lengths = history_frame([Path(run_dir) for run_dir in runs["run_dir"]])
    history.insert(0, "study", repeat_as_categorical(runs["study"], lengths))
    history.insert(1, "run", repeat_as_categorical(runs["run"], lengths))
    return Study(
        runs=runs, history=history, incomplete=incomplete, factors=varying(runs, factors), unreadable=unreadable
    )
