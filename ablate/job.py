"""``python -m ablate.job <spec>``: one job of the ``local`` launcher, in a fresh process.

The spec is a pickle the launcher wrote for this job a moment ago, in a private temporary directory (never a
file from a study directory): Hydra's context, the task function (by reference) and the job's composed
config. The job runs exactly as in Hydra's own launchers (``hydra.core.utils.run_job``); its return value is
written beside the spec for the launcher.
"""

from __future__ import annotations

import pickle
import sys
from pathlib import Path

JOB_DISK_FULL = 75  # exit statuses that tell the launcher to stop the study (sysexits' EX_TEMPFAIL)
JOB_TERMINATED = 143
JOB_INTERRUPTED = 130


def main(spec_path: str) -> int:
    from hydra.core.singleton import Singleton
    from hydra.core.utils import JobStatus, run_job, setup_globals

    from ablate.runner import Terminated
    from ablate.runtime import DiskFull, is_disk_full

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
