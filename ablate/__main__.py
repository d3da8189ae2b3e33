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

from ablate.checks import ConfigError
from ablate.cli.compose import validate_single_run
from ablate.cli.help import help_text
from ablate.cli.overrides import precheck_overrides
from ablate.config import CONF_DIR


def main() -> int:
    args = sys.argv[1:]
    if "--help" in args or "-h" in args:
        print(help_text())
        return 0
    if "--fresh" in args:  # run every grid point again; earlier records are set aside, never deleted
        args = [a for a in args if a != "--fresh"] + ["hydra.sweeper.resume=false"]
    if "--yes" in args:  # start a study above ablate.study.grid.LARGE_GRID runs without asking
        args = [a for a in args if a != "--yes"] + ["hydra.sweeper.yes=true"]
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
    from ablate.study.directory import StudySummaryCallback

    register_configs()
    from ablate.record.files import DiskFull
    from ablate.record.runner import Terminated
    from ablate.study.job import statuses, task

    try:
        hydra.main(config_path=str(CONF_DIR), config_name="config", version_base="1.3")(task)()
    except KeyboardInterrupt:
        return stopped("interrupted (Ctrl-C)", "the run in progress is recorded as failed", 130)
    except Terminated as err:  # the run in progress recorded it; finished records are complete
        return stopped(str(err), "the run in progress is recorded as failed", 143)
    except DiskFull as err:
        return stopped(str(err), "the run that could not write is recorded as failed where space allowed", 1)
    any_failed = StudySummaryCallback.failed_runs > 0 or "failed" in statuses
    return 1 if any_failed else 0


def stopped(why: str, what: str, code: int) -> int:
    """A study stopped early: one line, the summary of what is recorded, and how to resume. No traceback."""
    from ablate.study.directory import CURRENT, finish_study

    if not CURRENT:  # a single run, or a study stopped before its first run
        print(f"error: {why}; {what}", file=sys.stderr)
        return code
    sweep_dir = Path(CURRENT["sweep_dir"])
    try:
        _, text = finish_study(sweep_dir, CURRENT)
        where = text.splitlines()[0].removeprefix("study: ")
    except OSError as err:  # a full disk may not take summary.csv either
        where = f"summary.csv not written ({err.strerror or err})"
    print(f"error: {why}; {what}; {where}; resume with the same command", file=sys.stderr)
    print(f"summary: {sweep_dir / 'summary.csv'}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
