"""``python -m ablate``: the Hydra entry point.

Before Hydra starts, the command-line overrides are checked against the schemas (unknown keys and group
options fail with one line and a suggestion). Hydra then composes the config; the task function converts it
to typed objects once, validates it, and hands it to the runner. Exit status: 0 when every run completed or
diverged (divergence is a result), 1 when a run failed, 2 for a configuration mistake.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from ablate.cli import CONF_DIR, ConfigError, help_text, precheck_overrides, run_label, validate_single_run

_statuses: list[str] = []


def _task(cfg: object) -> str:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from ablate.config import to_typed
    from ablate.runner import execute
    from ablate.study import read_study_stamp

    hc = HydraConfig.get()
    try:
        config = to_typed(cfg)  # type: ignore[arg-type]
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    overrides = list(hc.overrides.task)
    multirun = hc.mode == RunMode.MULTIRUN
    stamp = read_study_stamp(Path(hc.sweep.dir)) if multirun else {}
    study = {key: value for key, value in stamp.items() if key != "grid"}  # each record keeps its study's stamp
    label = run_label(overrides, study.get("factors"), hc.job.num if multirun else None)
    status = execute(config, Path(hc.runtime.output_dir), label, overrides, study)
    _statuses.append(status)
    return status


def main() -> int:
    args = sys.argv[1:]
    if "--help" in args or "-h" in args:
        print(help_text())
        return 0
    if "--fresh" in args:  # run every grid point again; earlier records are set aside, never deleted
        args = [a for a in args if a != "--fresh"] + ["hydra.sweeper.resume=false"]
        sys.argv = sys.argv[:1] + args
    try:
        precheck_overrides(args)
        validate_single_run(args)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    # wandb (a later tracker) must never reach for the network unless the user chose so
    os.environ.setdefault("WANDB_MODE", "offline")
    os.environ.setdefault("WANDB_ERROR_REPORTING", "false")
    os.environ.setdefault("WANDB_SILENT", "true")

    import hydra

    from ablate.config import register_configs
    from ablate.study import StudySummaryCallback

    register_configs()
    hydra.main(config_path=str(CONF_DIR), config_name="config", version_base="1.3")(_task)()
    any_failed = StudySummaryCallback.failed_runs > 0 or "failed" in _statuses
    return 1 if any_failed else 0


if __name__ == "__main__":
    sys.exit(main())
