"""``python -m ablate``: the Hydra entry point.

Before Hydra starts, the command-line overrides are checked against the schemas (unknown keys and group
options fail with one line and a suggestion). Hydra then composes the config; the task function converts it
to typed objects once, validates it, and hands it to the runner. Exit status: 0 when every run completed or
diverged (divergence is a result), 1 when a run failed, 2 for a configuration mistake.
"""

from __future__ import annotations

import os
import sys

from ablate.cli import CONF_DIR, ConfigError, help_text, precheck_overrides, validate_single_run


def main() -> int:
    args = sys.argv[1:]
    if "--help" in args or "-h" in args:
        print(help_text())
        return 0
    if "--fresh" in args:  # run every grid point again; earlier records are set aside, never deleted
        args = [a for a in args if a != "--fresh"] + ["hydra.sweeper.resume=false"]
    if "--smoke" in args:  # every run for 3 updates, into outputs/studies/smoke/...: does the study run at all?
        args = [a for a in args if a != "--smoke"] + ["smoke=true", "tracker=local"]
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
    from ablate.runner import Terminated
    from ablate.task import statuses, task

    try:
        hydra.main(config_path=str(CONF_DIR), config_name="config", version_base="1.3")(task)()
    except Terminated as err:  # the run in progress recorded it; finished records are complete
        print(
            f"error: {err}; the run in progress is recorded as failed; run the same command to resume", file=sys.stderr
        )
        return 143
    any_failed = StudySummaryCallback.failed_runs > 0 or "failed" in statuses
    return 1 if any_failed else 0


if __name__ == "__main__":
    sys.exit(main())
