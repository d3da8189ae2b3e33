"""The Hydra task function: one run from a composed config (in the launching process or a job process).

It lives in its own module, not in ``__main__``, so launchers that run jobs in other processes (``local``,
``slurm``) can pickle it by reference.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from ablate.cli import ConfigError, run_label

statuses: list[str] = []


def task(cfg: object) -> str:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from ablate.config import to_typed
    from ablate.runner import execute
    from ablate.study import MULTIRUN_ENV, read_study_stamp

    hc = HydraConfig.get()
    try:
        config = to_typed(cfg)  # type: ignore[arg-type]
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    overrides = list(hc.overrides.task)
    multirun = hc.mode == RunMode.MULTIRUN
    stamp = read_study_stamp(Path(hc.sweep.dir), os.environ.get(MULTIRUN_ENV)) if multirun else {}
    study = {key: value for key, value in stamp.items() if key != "grid"}  # each record keeps its study's stamp
    label = run_label(overrides, study.get("factors"), hc.job.num if multirun else None)
    study_dir = Path(hc.sweep.dir).absolute() if multirun else None
    status = execute(config, Path(hc.runtime.output_dir), label, overrides, study, study_dir)
    statuses.append(status)
    return status
