"""Trackers: where a run's events go. The loop calls ``log``; it knows nothing about files or W&B.

A tracker gets ``start(info)`` once, ``log(step, metrics)`` for every step, and ``finish(result)`` once with
the run's final ``result.json`` content. The run record tracker is always on and is the source of truth.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, Protocol, TextIO

from ablate.record.files import atomic_write_json, atomic_write_text, is_disk_full
from ablate.run import metrics as M
from ablate.run.metrics import finite_or_none, json_safe

METRICS_FILE = "metrics.jsonl"
RESULT_FILE = "result.json"
CONFIG_FILE = "config.yaml"
RESERVED_BYTES = 65536  # result.json's size while running: room for the final result on a full disk


class Tracker(Protocol):
    def start(self, info: dict[str, Any]) -> None: ...

    def log(self, step: int, metrics: dict[str, float]) -> None: ...

    def finish(self, result: dict[str, Any]) -> None: ...


class RunRecord:
    """The local run record: ``metrics.jsonl`` streamed line by line, ``result.json`` replaced atomically.

    Each metrics line is one JSON object ``{"step": t, "<metric>": value, ...}`` written with a single
    ``write`` and flushed, so a run killed at any moment leaves only whole lines plus at most one partial
    last line, which readers skip. ``result.json`` says ``running`` from the start and is replaced by the
    final result at the end; a record still saying ``running`` after its process died was killed.

    A full disk must not leave a record saying ``running``: the ``running`` file is padded to
    ``RESERVED_BYTES`` (JSON allows trailing blanks), and if the final atomic replace cannot get space, the
    final result is written over that reserved file in place (the traceback dropped if it does not fit).
    """

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self._file: TextIO | None = None
        self._info: dict[str, Any] = {}

    def start(self, info: dict[str, Any]) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._info = info
        text = json.dumps(json_safe({**info, "status": "running"}), indent=2, default=str)
        atomic_write_text(self.run_dir / RESULT_FILE, text + "\n" + " " * max(0, RESERVED_BYTES - len(text) - 1))
        self._file = open(self.run_dir / METRICS_FILE, "a", encoding="utf-8")  # noqa: SIM115 closed in finish

    def log(self, step: int, metrics: dict[str, float]) -> None:
        assert self._file is not None, "RunRecord.log before start"
        line = {"step": step, **metrics}
        try:
            text = json.dumps(line, allow_nan=False)
        except ValueError:  # NaN or inf: JSON has neither, write null (the run's status says what happened)
            text = json.dumps({k: finite_or_none(v) for k, v in line.items()}, allow_nan=False)
        self._file.write(text + "\n")
        self._file.flush()

    def finish(self, result: dict[str, Any]) -> None:
        if self._file is not None:
            try:
                self._file.close()
            except OSError:  # the last line could not be flushed (a full disk): readers skip a partial line
                pass
            self._file = None
        path = self.run_dir / RESULT_FILE
        try:
            atomic_write_json(path, result)
        except OSError as err:
            if not is_disk_full(err) or not path.exists():
                raise
            write_in_place(path, result)


def write_in_place(path: Path, result: dict[str, Any]) -> None:
    """Overwrite ``path`` with ``result`` inside its current size, which needs no new disk space."""
    size = path.stat().st_size
    for attempt in (result, {k: v for k, v in result.items() if k != "traceback"}):
        data = json.dumps(json_safe(attempt), default=str).encode()
        if len(data) < size:
            with open(path, "r+b") as f:
                f.write(data + b" " * (size - len(data)))
                f.flush()
                os.fsync(f.fileno())
            return
    raise OSError(f"the final result does not fit the {size} bytes reserved at {path}")


class Console:
    """A progress bar per run on a terminal, otherwise one summary line per run (``tracker.progress``)."""

    def __init__(self, mode: str, total_steps: int, label: str, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        if mode == "auto":
            mode = "bar" if self.stream.isatty() else "line"
        self.mode = mode
        self.total_steps = total_steps
        self.label = label
        self._bar: Any = None

    def start(self, info: dict[str, Any]) -> None:
        if self.mode == "bar":
            from tqdm import tqdm

            self._bar = tqdm(
                total=self.total_steps,
                desc=self.label,
                file=self.stream,
                unit="step",
                dynamic_ncols=True,
                leave=True,
                mininterval=0.2,
            )

    def log(self, step: int, metrics: dict[str, float]) -> None:
        if self._bar is not None and step < self.total_steps:
            self._bar.update(1)
            if M.EVAL_LOSS in metrics:
                self._bar.set_postfix({"eval/loss": f"{metrics[M.EVAL_LOSS]:.4f}"}, refresh=False)

    def finish(self, result: dict[str, Any]) -> None:
        if self._bar is not None:
            self._bar.close()
        if self.mode != "off":
            print(summary_line(result), file=self.stream, flush=True)


def summary_line(result: dict[str, Any]) -> str:
    """``[label] completed: eval/loss 0.41 eval/acc 0.87 (1000 steps, 2.1 s) -> <run dir>``."""
    s = result.get("summary") or {}
    parts = [f"[{result.get('label', '')}] {result['status']}"]
    if result["status"] == "failed":
        parts.append(f": {result.get('error', '')}")
    elif s.get("final_eval_loss") is not None:
        parts.append(f", {s.get('outcome')}: eval/loss {s['final_eval_loss']:.4f}")
        if s.get("final_eval_acc") is not None:
            parts.append(f" eval/acc {s['final_eval_acc']:.4f}")
    if result["status"] == "diverged":
        parts.append(f" at step {s.get('diverged_step')}: {s.get('divergence_reason')}")
    parts.append(f" ({s.get('steps_completed', 0)} steps, {result.get('wall_time_s', 0):.1f} s)")
    parts.append(f" -> {result.get('run_dir', '')}")
    return "".join(parts)


class Trackers:
    """Fans events out to several trackers, in order."""

    def __init__(self, trackers: list[Tracker]) -> None:
        self.trackers = trackers
        self.updates_logged = 0  # train steps seen, so a failed run can say how far it got

    def start(self, info: dict[str, Any]) -> None:
        for t in self.trackers:
            t.start(info)

    def log(self, step: int, metrics: dict[str, float]) -> None:
        if M.TRAIN_LOSS in metrics:
            self.updates_logged = step + 1
        for t in self.trackers:
            t.log(step, metrics)
