"""Which configs name the user's code (a target by import path, or data from disk), and its provenance.

Torch-free: the sweeper sorts a grid's points with it before deciding whether ``ablate.run.preflight`` (which
builds the parts) is needed at all.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from ablate.config import Config, config_dict
from ablate.run.data.config import LOADED, NpzConfig
from ablate.run.imports import code_identity
from ablate.run.models.config import CustomModelConfig
from ablate.run.optim.config import CustomOptimizerConfig
from ablate.run.schedules import CustomScheduleConfig, is_import_path

WORKLOAD_KEYS = (
    "model",
    "data",
    "optimizer",
    "schedule",
    "skew",
    "batch_size",
    "warmup_shape",
    "warmup",
    "steps",
    "loss",
)


def uses_user_code(c: Config) -> bool:
    """Whether the config names code or files of the user's (and so needs ``preflight``)."""
    return (
        isinstance(c.model, CustomModelConfig)
        or isinstance(c.data, LOADED)
        or isinstance(c.optimizer, CustomOptimizerConfig)
        or isinstance(c.schedule, CustomScheduleConfig)
        or is_import_path(c.warmup_shape)
        or c.loss != "auto"
    )


def workload_key(c: Config) -> str:
    """What ``preflight`` depends on: grid points with equal keys need one check between them."""
    d = config_dict(c)
    return json.dumps({k: d[k] for k in WORKLOAD_KEYS}, sort_keys=True, default=str)


def user_code(c: Config) -> dict[str, Any]:
    """Provenance of the user's code a run used: each target's package version and module file hash."""
    out: dict[str, Any] = {}
    for group in ("model", "data", "optimizer", "schedule"):
        target = getattr(getattr(c, group), "target", None)
        if isinstance(target, str):
            out[group] = code_identity(target)
    if isinstance(c.data, NpzConfig):  # the file's content is not in run_id (its path is): record its hash
        file = Path(c.data.path)
        if file.is_file():
            out["data"] = {"path": str(file.absolute()), "sha256": hashlib.sha256(file.read_bytes()).hexdigest()[:16]}
    if is_import_path(c.warmup_shape):
        out["warmup_shape"] = code_identity(c.warmup_shape)
    if c.loss != "auto":
        out["loss"] = code_identity(c.loss)
    return out
