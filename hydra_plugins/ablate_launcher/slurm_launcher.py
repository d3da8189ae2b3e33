"""``hydra/launcher=slurm``: Hydra's submitit SLURM launcher, except that one job SLURM kills does not abort
the study.

Hydra's launcher collects results with ``[j.results()[0] for j in jobs]``: the first job that was cancelled
(``scancel``), timed out or pre-empted raises there, the multirun stops, and no study summary is written. Here
each job's result is collected on its own; a job that SLURM ended is reported as failed (with SLURM's reason)
and the others are still waited for. Submission itself is Hydra's (``submit_jobs`` below follows
``BaseSubmititLauncher.launch`` of hydra-submitit-launcher 1.2, which has no smaller hook to override).

Inside a job, SIGUSR2 (submitit's warning before the time limit, which SLURM may send up to a minute early) only
warns, from the moment the job calls into Hydra: left to submitit, it ends a job at once, even one just starting,
and nothing is recorded. The run records SIGTERM (SLURM's signal at cancel, time limit and pre-emption) as ``failed``
before SLURM's SIGKILL; the next run of the same command resumes the study.

``stack_size > 1`` submits one SLURM array task per stack of compatible runs (``ablate.study.stacks``) instead of
one per run; a stack that SLURM ends is reported per member, and its members are resumable as any killed run.
"""

# no `from __future__ import annotations`: Hydra's plugin scanner runs this module before it is in
# sys.modules, where dataclasses cannot resolve string annotations
import logging
import signal
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus, filter_overrides, setup_globals
from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf, SlurmQueueConf
from hydra_plugins.hydra_submitit_launcher.submitit_launcher import SlurmLauncher as HydraSlurmLauncher
from omegaconf import OmegaConf, open_dict

from ablate.study.stacks import check_stack_size, plan_stacks, run_stack, sweep_configs

log = logging.getLogger(__name__)


@dataclass
class AblateSlurmConf(SlurmQueueConf):
    _target_: str = "hydra_plugins.ablate_launcher.slurm_launcher.SlurmLauncher"
    stack_size: int = 1  # > 1: one SLURM array task per stack of up to this many compatible runs


# Hydra imports every module under hydra_plugins/ when it starts; that is when this config is registered.
ConfigStore.instance().store(group="hydra/launcher", name="ablate_slurm", node=AblateSlurmConf, provider="ablate")


class SlurmLauncher(HydraSlurmLauncher):
    def __init__(self, **params: Any) -> None:
        self.stack_size = check_stack_size(params.pop("stack_size", 1))
        super().__init__(**params)

    def _executor(self) -> Any:
        """submitit's executor with this launcher's parameters, as Hydra's launcher sets it up."""
        import submitit

        init_keys = {"submitit_folder", "max_num_timeout"}
        executor = submitit.AutoExecutor(
            cluster=self._EXECUTOR,
            folder=self.params["submitit_folder"],
            slurm_max_num_timeout=self.params.get("max_num_timeout", 0),
        )
        base = set(OmegaConf.structured(BaseQueueConf).keys())
        executor.update_parameters(
            **{k if k in base else f"{self._EXECUTOR}_{k}": v for k, v in self.params.items() if k not in init_keys}
        )
        return executor

    def submit_jobs(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> list[Any]:
        """Submit one SLURM array task per job, exactly as Hydra's launcher does; return submitit's jobs."""
        assert self.config is not None
        executor = self._executor()
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        log.info(f"Submitting {len(job_overrides)} jobs to SLURM; study: {sweep_dir}")
        params = []
        for idx, overrides in enumerate(job_overrides, start=initial_job_idx):
            log.info(f"\t#{idx} : {' '.join(filter_overrides(overrides))}")
            params.append((list(overrides), "hydra.sweep.dir", idx, f"job_id_for_{idx}", Singleton.get_state()))
        return list(executor.map_array(self, *zip(*params, strict=True)))

    def __call__(self, *args: Any, **kwargs: Any) -> JobReturn:
        """Inside the SLURM job: run Hydra's job with SIGUSR2 warning instead of ending the job."""
        from ablate.record.runner import time_limit_near

        signal.signal(signal.SIGUSR2, time_limit_near)
        return super().__call__(*args, **kwargs)

    def submit_stacks(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> tuple[list[Any], list]:
        """Group the jobs into stacks and submit one SLURM array task per stack; submitit's jobs and the stacks."""
        assert self.config is not None and self.hydra_context is not None
        setup_globals()
        configs = sweep_configs(self.hydra_context, self.config, job_overrides, initial_job_idx)
        stacks = plan_stacks(configs, self.stack_size)
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        log.info(f"Submitting {len(stacks)} stacks of {len(configs)} runs to SLURM; study: {sweep_dir}")
        params = []
        for stack in stacks:
            first = initial_job_idx + stack[0]
            log.info(f"\t#{first} : {' '.join(filter_overrides(job_overrides[stack[0]]))} ({len(stack)} runs)")
            members = [list(job_overrides[i]) for i in stack]
            params.append((members, [initial_job_idx + i for i in stack], Singleton.get_state()))
        jobs = list(self._executor().map_array(self.run_stack_task, *zip(*params, strict=True)))
        return jobs, stacks

    def run_stack_task(self, member_overrides: list[list[str]], job_nums: list[int], singleton_state: Any) -> list:
        """Inside the SLURM job: compose each member's config as Hydra's launcher would, then train the stack."""
        import submitit

        from ablate.record.runner import time_limit_near

        assert self.hydra_context is not None and self.config is not None
        signal.signal(signal.SIGUSR2, time_limit_near)
        Singleton.set_state(singleton_state)
        setup_globals()
        configs = []
        for overrides, num in zip(member_overrides, job_nums, strict=True):
            sweep_config = self.hydra_context.config_loader.load_sweep_config(self.config, overrides)
            with open_dict(sweep_config):
                sweep_config.hydra.job.id = submitit.JobEnvironment().job_id
                sweep_config.hydra.job.num = num
            configs.append(sweep_config)
        return run_stack(self.hydra_context, configs)

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        if self.stack_size > 1:
            return self.launch_stacks(job_overrides, initial_job_idx)
        jobs = self.submit_jobs(job_overrides, initial_job_idx)
        log.info(f"SLURM job ids: {', '.join(str(j.job_id) for j in jobs)}")
        returns = []
        for job, overrides in zip(jobs, job_overrides, strict=True):
            try:
                returns.append(job.results()[0])
            except Exception as err:  # cancelled, timed out, pre-empted, node failure: this job only
                ret = JobReturn(overrides=list(overrides), status=JobStatus.FAILED)
                state = job.state if hasattr(job, "state") else "unknown"
                ret.return_value = RuntimeError(
                    f"SLURM job {job.job_id} ended as {state}: {_first_line(err)}{_log_tail(job)}"
                )
                returns.append(ret)
        return returns

    def launch_stacks(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        """Like ``launch``, one SLURM job per stack: a stack SLURM ended fails each of its members."""
        jobs, stacks = self.submit_stacks(job_overrides, initial_job_idx)
        log.info(f"SLURM job ids: {', '.join(str(j.job_id) for j in jobs)}")
        returns: list[JobReturn | None] = [None] * len(job_overrides)
        for job, stack in zip(jobs, stacks, strict=True):
            try:
                for i, ret in zip(stack, job.results()[0], strict=True):
                    returns[i] = ret
            except Exception as err:  # cancelled, timed out, pre-empted, node failure: this stack only
                state = job.state if hasattr(job, "state") else "unknown"
                why = f"SLURM job {job.job_id} ended as {state}: {_first_line(err)}{_log_tail(job)}"
                for i in stack:
                    returns[i] = JobReturn(
                        overrides=list(job_overrides[i]), status=JobStatus.FAILED, _return_value=RuntimeError(why)
                    )
        return returns  # type: ignore[return-value]


def _log_tail(job: Any) -> str:
    """`` (log <job's stderr file>: <its last line>)``, the job's own account of how it ended, if it wrote one."""
    try:
        path = Path(job.paths.stderr)
        lines = _nonblank_lines(path.read_text(errors="replace"))
    except (AttributeError, OSError):
        return ""
    return f" (log {path}: {lines[-1][:300]})" if lines else f" (log {path}: empty)"


def _first_line(err: BaseException) -> str:
    lines = _nonblank_lines(str(err))
    return lines[0] if lines else type(err).__name__


def _nonblank_lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]
