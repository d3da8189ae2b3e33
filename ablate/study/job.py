"""A job of a study: the Hydra task function that trains one grid point, and ``python -m ablate.study.job``.

``task`` runs one run from a composed config, in the launching process (``basic`` launcher) or in a job
process. It lives here, not in ``__main__``, so launchers that run jobs in other processes (``local``,
``slurm``) can pickle it by reference.

``python -m ablate.study.job <spec>`` is one job of the ``local`` launcher, in a fresh process. The spec is a
pickle the launcher wrote for this job a moment ago, in a private temporary directory (never a file from a
study directory): Hydra's context and the composed configs of the job's runs: one run, or the members of a stack
(``ablate.study.stacks``). A single run goes through Hydra's ``run_job`` exactly as in Hydra's own launchers;
the return values are written beside the spec for the launcher, and the exit status says why it stopped early.
"""

from __future__ import annotations

import os
import pickle
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ablate.checks import ConfigError
from ablate.study.names import run_label

if TYPE_CHECKING:
    from ablate.record.stack_runner import MemberJob

JOB_DISK_FULL = 75  # exit statuses that tell the launcher to stop the study (sysexits' EX_TEMPFAIL)
JOB_TERMINATED = 143
JOB_INTERRUPTED = 130

statuses: list[str] = []  # of the runs this process trained (the basic launcher's summary)


def task(cfg: object) -> str:
    """Train the run of one composed config and record it; returns its status (Hydra's task function)."""
    from ablate.record.runner import execute

    job = prepare(cfg)
    status = execute(job.config, job.run_dir, job.label, job.overrides, job.study, job.study_dir)
    statuses.append(status)
    return status


def prepare(cfg: object) -> MemberJob:
    """Everything ``task`` knows before it trains: the typed config, the run directory, label and study stamp.

    A stack (``ablate.study.stacks``) runs it as the task function of each member's Hydra job, so each member
    gets Hydra's own job directory and files exactly as a solo run does; then it trains them together.
    """
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from ablate.config import to_typed
    from ablate.record.stack_runner import MemberJob
    from ablate.study.directory import MULTIRUN_ENV, read_study_stamp

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
    return MemberJob(config, Path(hc.runtime.output_dir), label, overrides, study, study_dir)


def main(spec_path: str) -> int:
    """Run the job (or the stack of jobs) of ``spec_path``; write each job's return value, or its failure as a
    string, to ``<spec>.out`` (a list, in the spec's order)."""
    from hydra.core.singleton import Singleton
    from hydra.core.utils import JobStatus, setup_globals

    from ablate.record.files import DiskFull, is_disk_full
    from ablate.record.runner import Terminated
    from ablate.study.stacks import run_stack

    spec = pickle.loads(Path(spec_path).read_bytes())
    Singleton.set_state(spec["singleton_state"])
    setup_globals()
    try:
        returns = run_stack(spec["hydra_context"], spec["sweep_configs"])
    except (DiskFull, OSError) as err:  # OSError: Hydra's own files of the job could not be written
        if isinstance(err, OSError) and not is_disk_full(err):
            raise
        print(f"error: {err}", file=sys.stderr)
        return JOB_DISK_FULL
    except Terminated:  # the run recorded it
        return JOB_TERMINATED
    except KeyboardInterrupt:  # likewise; the launcher's own process reports it
        return JOB_INTERRUPTED
    values = []
    for ret in returns:
        if ret.status == JobStatus.COMPLETED:
            values.append((True, ret.return_value))
        else:
            failure = ret._return_value
            print(f"error: job failed: {type(failure).__name__}: {failure}", file=sys.stderr)
            values.append((False, f"{type(failure).__name__}: {failure}"))
    Path(spec_path + ".out").write_bytes(pickle.dumps(values))
    return 0 if all(ok for ok, _ in values) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
