"""``hydra/launcher=local``: run a study's jobs in parallel processes on this machine, one GPU per job.

Each job runs in a fresh process (``python -m ablate.study.job``), so it starts with no CUDA context and sees only
the GPU it was given (``CUDA_VISIBLE_DEVICES=<id>``, so inside the job it is ``cuda:0``). GPUs are handed out by
``ablate.study.devices.DeviceAllocator`` as they become free, never by ``job.num % n_gpus``. Without GPUs,
``cores // cpu_threads`` jobs run at once. Every job sets the config's ``cpu_threads`` itself (part of the
run's identity), so a run's metrics are bitwise those of the same run under the sequential launcher. A job
process that dies (killed, out of memory) is reported as failed; the other jobs go on. Ctrl-C, SIGTERM or a
full disk in a job stops the study: jobs not yet started are cancelled. Cost: a fresh process pays Python +
torch start-up (2-3 s on a small machine) and wandb's service start (~1 s) per job.
"""

# no `from __future__ import annotations`: Hydra's plugin scanner runs this module before it is in
# sys.modules, where dataclasses cannot resolve string annotations
import logging
import os
import pickle
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cloudpickle
from hydra.core.config_store import ConfigStore
from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus, configure_log, filter_overrides, setup_globals
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig

from ablate.record.files import DiskFull
from ablate.record.runner import Terminated
from ablate.study.devices import DeviceAllocator, visible_gpus
from ablate.study.job import JOB_DISK_FULL, JOB_INTERRUPTED, JOB_TERMINATED
from ablate.study.stacks import check_stack_size, plan_stacks, sweep_configs

log = logging.getLogger(__name__)

# exit statuses of ``python -m ablate.study.job`` that stop the whole study, and what the launcher raises for them
STOP_CODES: dict[int, Any] = {
    JOB_DISK_FULL: lambda sweep_dir: DiskFull(str(sweep_dir)),
    JOB_TERMINATED: lambda sweep_dir: Terminated("a job was terminated by SIGTERM"),
    JOB_INTERRUPTED: lambda sweep_dir: KeyboardInterrupt(),
}


@dataclass
class LocalLauncherConf:
    _target_: str = "hydra_plugins.ablate_launcher.local_launcher.LocalLauncher"
    n_jobs: int = 0  # parallel jobs; 0: one per GPU slot when GPUs exist, else one per CPU core
    gpus: Any = "auto"  # auto (every GPU CUDA sees), none (CPU workers), or a list of GPU ids
    jobs_per_gpu: int = 1  # > 1 shares each GPU between that many jobs, on purpose
    lock_dir: str = ""  # GPU lock files; empty: a per-user directory in the system's temp dir
    stack_size: int = 1  # > 1: each job process trains a stack of up to this many compatible runs (ablate.run.stacked)


# Hydra imports every module under hydra_plugins/ when it starts; that is when this config is registered.
ConfigStore.instance().store(group="hydra/launcher", name="ablate_local", node=LocalLauncherConf, provider="ablate")


class LocalLauncher(Launcher):
    def __init__(
        self, n_jobs: int = 0, gpus: Any = "auto", jobs_per_gpu: int = 1, lock_dir: str = "", stack_size: int = 1
    ) -> None:
        self.n_jobs = n_jobs
        self.stack_size = check_stack_size(stack_size)
        self.gpus = gpus
        self.jobs_per_gpu = jobs_per_gpu
        self.lock_dir = Path(lock_dir) if lock_dir else None
        self.config: DictConfig | None = None
        self.hydra_context: HydraContext | None = None
        self.task_function: TaskFunction | None = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config = config
        self.hydra_context = hydra_context
        self.task_function = task_function

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        setup_globals()
        assert self.config is not None and self.hydra_context is not None and self.task_function is not None
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        gpus = visible_gpus(self.gpus if not isinstance(self.gpus, list | tuple) else list(self.gpus))
        slots = len(gpus) * self.jobs_per_gpu
        threads = int(self.config.get("cpu_threads", 1))
        configs = sweep_configs(self.hydra_context, self.config, job_overrides, initial_job_idx)
        units = plan_stacks(configs, self.stack_size) if self.stack_size > 1 else [[i] for i in range(len(configs))]
        n_jobs = self.n_jobs or slots or max(1, (os.cpu_count() or 1) // threads)
        allocator = DeviceAllocator(gpus, self.jobs_per_gpu, self.lock_dir) if gpus else None
        where = f"{len(gpus)} GPU(s) {','.join(gpus)}" if gpus else f"CPU, cpu_threads={threads} each"
        what = f"{len(units)} stacks of {len(configs)} runs" if len(units) < len(configs) else f"{len(units)} jobs"
        log.info(f"Launching {what} on {n_jobs} local worker(s), {where}")
        self._stop: BaseException | None = None
        returns: list[JobReturn | None] = [None] * len(configs)
        with tempfile.TemporaryDirectory(prefix="ablate-jobs-") as tmp:
            pool = ThreadPoolExecutor(n_jobs)
            try:
                futures = [
                    pool.submit(self._run, unit, [configs[i] for i in unit], Path(tmp), allocator, threads)
                    for unit in units
                ]
                for unit, future in zip(units, futures, strict=True):
                    for i, ret in zip(unit, future.result(), strict=True):
                        returns[i] = ret
            except BaseException:  # Ctrl-C here: jobs not started are cancelled, running ones record and end
                pool.shutdown(wait=True, cancel_futures=True)
                raise
            pool.shutdown(wait=True)
        if self._stop is not None:  # a job stopped the study (SIGTERM, a full disk): so does the launcher
            raise self._stop
        return returns  # type: ignore[return-value]

    def _run(
        self, unit: list[int], configs: list[DictConfig], tmp: Path, allocator: DeviceAllocator | None, threads: int
    ) -> list[JobReturn]:
        """One job process: one run, or one stack of runs; a JobReturn per run."""
        assert self.hydra_context is not None and self.config is not None
        rets = [JobReturn(overrides=list(c.hydra.overrides.task), cfg=c, hydra_cfg=c) for c in configs]
        if self._stop is not None:  # the study is stopping: start nothing new
            for ret in rets:
                ret.status, ret.return_value = JobStatus.FAILED, self._stop
            return rets
        idx = int(configs[0].hydra.job.num)
        spec = tmp / f"job{idx}.pkl"
        spec.write_bytes(
            cloudpickle.dumps(
                {
                    "hydra_context": self.hydra_context,
                    "sweep_configs": configs,
                    "singleton_state": Singleton.get_state(),
                }
            )
        )
        env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
        label = " ".join(filter_overrides(rets[0].overrides or []))
        label += f" (stack of {len(configs)} runs)" if len(configs) > 1 else ""
        if allocator is None:
            done = self._start(idx, label, spec, env)
        else:
            with allocator.acquire() as gpu:
                done = self._start(idx, label, spec, {**env, "CUDA_VISIBLE_DEVICES": gpu}, f" on GPU {gpu}")
        result = tmp / f"job{idx}.pkl.out"
        stop = STOP_CODES.get(done.returncode)
        if stop is not None and self._stop is None:
            self._stop = stop(Path(str(self.config.hydra.sweep.dir)))
        values = pickle.loads(result.read_bytes()) if result.exists() else None
        for n, ret in enumerate(rets):
            if values is not None and values[n][0]:
                ret.status, ret.return_value = JobStatus.COMPLETED, values[n][1]
            else:
                why = values[n][1] if values is not None else f"job process exited with status {done.returncode}"
                ret.status, ret.return_value = JobStatus.FAILED, RuntimeError(why)
        return rets

    @staticmethod
    def _start(idx: int, label: str, spec: Path, env: dict[str, str], where: str = "") -> Any:
        log.info(f"\t#{idx}{where} : {label}")
        return subprocess.run([sys.executable, "-m", "ablate.study.job", str(spec)], env=env, check=False)
