"""A job of a study: the Hydra task function that trains one grid point, and ``python -m ablate.study.job``.

``task`` runs one run from a composed config, in the launching process (``basic`` launcher) or in a job
process. It lives here, not in ``__main__``, so launchers that run jobs in other processes (``local``,
``slurm``) can pickle it by reference.

``python -m ablate.study.job <spec>`` is one job of the ``local`` launcher, in a fresh process. The spec is a
pickle the launcher wrote for this job a moment ago, in a private temporary directory (never a file from a
study directory): Hydra's context, the task function (by reference) and the job's composed config. The job
runs exactly as in Hydra's own launchers (``hydra.core.utils.run_job``); its return value is written beside
the spec for the launcher, and its exit status says why it stopped early.
"""

from __future__ import annotations

import os
import pickle
import sys
from pathlib import Path

from ablate.checks import ConfigError
from ablate.study.names import run_label

JOB_DISK_FULL = 75  # exit statuses that tell the launcher to stop the study (sysexits' EX_TEMPFAIL)
JOB_TERMINATED = 143
JOB_INTERRUPTED = 130

statuses: list[str] = []  # of the runs this process trained (the basic launcher's summary)


def task(cfg: object) -> str:
    """Train the run of one composed config and record it; returns its status (Hydra's task function)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from ablate.config import to_typed
    from ablate.record.runner import execute
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
    status = execute(config, Path(hc.runtime.output_dir), label, overrides, study, study_dir)
    statuses.append(status)
    return status


def main(spec_path: str) -> int:
    from hydra.core.singleton import Singleton
    from hydra.core.utils import JobStatus, run_job, setup_globals

    from ablate.record.files import DiskFull, is_disk_full
    from ablate.record.runner import Terminated

    spec = pickle.loads(Path(spec_path).read_bytes())
    Singleton.set_state(spec["singleton_state"])
    setup_globals()
    try:
        ret = run_job(
            hydra_context=spec["hydra_context"],
            task_function=spec["task_function"],
            config=spec["sweep_config"],
            job_dir_key="hydra.sweep.dir",
            job_subdir_key="hydra.sweep.subdir",
        )
    except (DiskFull, OSError) as err:  # OSError: Hydra's own files of the job could not be written
        if isinstance(err, OSError) and not is_disk_full(err):
            raise
        print(f"error: {err}", file=sys.stderr)
        return JOB_DISK_FULL
    except Terminated:  # the run recorded it
        return JOB_TERMINATED
    except KeyboardInterrupt:  # likewise; the launcher's own process reports it
        return JOB_INTERRUPTED
    if ret.status != JobStatus.COMPLETED:
        failure = ret._return_value
        print(f"error: job failed: {type(failure).__name__}: {failure}", file=sys.stderr)
        return 1
    Path(spec_path + ".out").write_bytes(pickle.dumps(ret.return_value))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
