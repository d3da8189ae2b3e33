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
    """``{"run": ..., "config": {...}, "history": [{...}], "summary": {...}, "exit_code": int}``."""
    out: dict[str, Any] = {"config": {}, "history": [], "summary": {}, "exit_code": None}
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
        elif kind == "exit":
            out["exit_code"] = record.exit.exit_code
    return out
