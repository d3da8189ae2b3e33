"""Reads what W&B wrote for an offline run, with wandb's own protobuf definitions.

A ``.wandb`` file is a LevelDB-style log: a 7-byte header, then 32 KiB blocks of chunks, each with a 7-byte
header ``<crc32c:u32><length:u16><type:u8>`` (type 1 = a whole record, 2/3/4 = first/middle/last piece; a
block tail shorter than a header is padding). Each record is a ``wandb_internal_pb2.Record``.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

BLOCK = 32 * 1024
HEADER = 7


def records(path: Path) -> list[Any]:
    from wandb.proto import wandb_internal_pb2 as pb

    data = path.read_bytes()
    assert data[:4] == b":W&B", f"{path} is not a W&B transaction log"
    out, pending, pos = [], b"", HEADER
    while pos + HEADER <= len(data):
        left = BLOCK - pos % BLOCK
        if left < HEADER:
            pos += left
            continue
        _, length, kind = struct.unpack("<IHB", data[pos : pos + HEADER])
        if length == 0 and kind == 0:
            pos += left
            continue
        chunk = data[pos + HEADER : pos + HEADER + length]
        pos += HEADER + length
        if kind in (1, 2):
            pending = chunk
        else:
            pending += chunk
        if kind in (1, 4):
            record = pb.Record()
            record.ParseFromString(pending)
            out.append(record)
    return out


def read_offline_run(run_dir: Path) -> dict[str, Any]:
    """The one offline W&B run of ``run_dir``: see ``read_wandb_file``."""
    (path,) = run_dir.glob("wandb/offline-run-*/run-*.wandb")
    return read_wandb_file(path)


def read_offline_runs(run_dir: Path) -> list[dict[str, Any]]:
    """Every offline W&B run of ``run_dir`` (one per attempt), oldest first (by the folder's timestamp)."""
    paths = sorted(run_dir.glob("wandb/offline-run-*/run-*.wandb"), key=lambda p: p.parent.name.split("-")[2])
    return [read_wandb_file(path) for path in paths]


def read_wandb_file(path: Path) -> dict[str, Any]:
    """``{"run": ..., "config": {...}, "history": [{...}], "summary": {...}, "metrics": {...}, "exit_code": int}``.

    ``metrics`` holds each ``define_metric`` by name (or glob): ``{"step_metric": ..., "summary": ["last", "min"]}``.
    """
    out: dict[str, Any] = {"config": {}, "history": [], "summary": {}, "metrics": {}, "exit_code": None}
    for record in records(path):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            r = record.run
            out["run"] = {
                "id": r.run_id,
                "name": r.display_name,
                "group": r.run_group,
                "job_type": r.job_type,
                "project": r.project,
                "tags": list(r.tags),
            }
            out["config"].update({i.key: json.loads(i.value_json) for i in r.config.update})
        elif kind == "config":
            out["config"].update({i.key: json.loads(i.value_json) for i in record.config.update})
        elif kind == "history":
            out["history"].append(
                {"/".join(i.nested_key) or i.key: json.loads(i.value_json) for i in record.history.item}
            )
        elif kind == "summary":
            for i in record.summary.update:
                out["summary"]["/".join(i.nested_key) or i.key] = json.loads(i.value_json)
        elif kind == "metric":
            m = record.metric
            out["metrics"][m.name or m.glob_name] = {
                "step_metric": m.step_metric,
                "summary": sorted(field.name for field, on in m.summary.ListFields() if on),
            }
        elif kind == "exit":
            out["exit_code"] = record.exit.exit_code
    return out


WINDOWED = ("train/loss", "train/acc", "opt/grad_norm", "opt/update_ratio", "sys/step_time")


def expected_history(lines: list[dict[str, Any]], log_every: int, steps: int) -> list[dict[str, Any]]:
    """The points the W&B tracker should send for a run record's ``lines`` (``metrics.jsonl``), in order.

    Update steps are cut into windows ending at every multiple of ``log_every``, at the last update of the
    config (``steps - 1``) and at the record's last update (a run that stopped early); a window's point holds the
    mean of each ``WINDOWED`` metric over its steps, and every other metric of its last step. Lines with held-out
    or probe values are points of their own too (without ``WINDOWED`` metrics) when no window ends there.
    """
    updates = [line["step"] for line in lines if "train/loss" in line]
    ends = {s for s in updates if s % log_every == 0 or s == steps - 1} | ({max(updates)} if updates else set())
    by_step = {line["step"]: line for line in lines}
    out, start = [], 0
    for line in lines:
        step = line["step"]
        point = {"step": step, **{k: v for k, v in line.items() if k not in WINDOWED}}
        if step in ends:
            window = [by_step[s] for s in updates if start <= s <= step]
            for key in WINDOWED:
                values = [float("nan") if w[key] is None else w[key] for w in window if key in w]  # null: NaN, inf
                if values:
                    point[key] = sum(values) / len(values)
            start = step + 1
        elif not any(k.startswith(("eval/", "probe/")) for k in line):
            continue
        out.append(point)
    return out
