"""A study's jobs grouped into stacks, and one stack run as Hydra jobs: what every launcher with ``stack_size`` uses.

``plan_stacks`` groups the composed grid points (``ablate.run.stacked.compat.group_stacks``: same architecture,
data and loop settings; at most ``stack_size`` members) and says in one line per reason which points train alone.
``run_stack`` runs each member's Hydra job with ``ablate.study.job.prepare`` as the task function (Hydra's own job
directory, ``.hydra/`` files and callbacks, exactly as a solo job), then trains the members together
(``ablate.record.stack_runner.execute_stack``) and gives each its ``JobReturn`` with the member's status.
"""

from __future__ import annotations

import copy
import sys
from collections import Counter
from collections.abc import Sequence
from typing import Any

from hydra.core.utils import JobReturn, JobStatus, run_job
from hydra.types import HydraContext
from omegaconf import DictConfig, OmegaConf, open_dict

from ablate.checks import ConfigError
from ablate.config import to_typed
from ablate.run.stacked.compat import group_stacks, solo_reason
from ablate.study.sweep_compose import SweepComposer

DEFAULT_STACK_SIZE = 64


def sweep_configs(
    hydra_context: HydraContext, config: DictConfig, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
) -> list[DictConfig]:
    """Each job's composed config, numbered as Hydra's basic launcher numbers them (``load_sweep_config``'s config,
    composed once per combination of group overrides: ``ablate.study.sweep_compose``)."""
    composer = SweepComposer(hydra_context.config_loader, config)
    configs = []
    for i, overrides in enumerate(job_overrides):
        sweep_config = composer.compose(overrides)
        with open_dict(sweep_config):
            sweep_config.hydra.job.id = initial_job_idx + i
            sweep_config.hydra.job.num = initial_job_idx + i
        configs.append(sweep_config)
    return configs


def typed(sweep_config: DictConfig) -> Any:
    """The typed config of a composed job config (its ``hydra`` node left out)."""
    cfg = copy.deepcopy(sweep_config)
    with open_dict(cfg):
        del cfg["hydra"]
    OmegaConf.set_readonly(cfg, False)
    return to_typed(cfg)


def plan_stacks(configs: list[DictConfig], stack_size: int) -> list[list[int]]:
    """Job indices grouped into stacks; one line on stderr per reason some jobs train alone, and the plan."""
    typed_configs = [typed(c) for c in configs]
    reasons = Counter(r for r in (solo_reason(c) for c in typed_configs) if r is not None)
    for reason, count in reasons.items():
        print(f"note: {count} run(s) train alone, not stacked: {reason}", file=sys.stderr, flush=True)
    stacks = group_stacks(typed_configs, stack_size)
    sizes = Counter(len(s) for s in stacks)
    shape = ", ".join(f"{n} x {size}" for size, n in sorted(sizes.items(), reverse=True))
    print(f"stacks: {len(configs)} runs in {len(stacks)} stack(s) ({shape} members)", file=sys.stderr, flush=True)
    return stacks


def run_stack(hydra_context: HydraContext, configs: list[DictConfig]) -> list[JobReturn]:
    """Run one stack's members as Hydra jobs (module docstring); a single member trains as a solo run."""
    from ablate.record.stack_runner import execute_stack
    from ablate.study import job

    if len(configs) == 1:
        return [_run_job(hydra_context, job.task, configs[0])]
    returns = [_run_job(hydra_context, job.prepare, c) for c in configs]
    prepared = [i for i, r in enumerate(returns) if r.status == JobStatus.COMPLETED]
    statuses = execute_stack([returns[i].return_value for i in prepared])
    for i, status in zip(prepared, statuses, strict=True):
        returns[i].return_value = status
        job.statuses.append(status)
    return returns


def _run_job(hydra_context: HydraContext, task_function: Any, config: DictConfig) -> JobReturn:
    return run_job(
        hydra_context=hydra_context,
        task_function=task_function,
        config=config,
        job_dir_key="hydra.sweep.dir",
        job_subdir_key="hydra.sweep.subdir",
    )


def check_stack_size(stack_size: int) -> int:
    """``stack_size`` is an integer >= 1; one line naming the value and the fix otherwise."""
    if isinstance(stack_size, bool) or not isinstance(stack_size, int) or stack_size < 1:
        raise ConfigError(
            f"hydra.launcher.stack_size={stack_size} is not allowed: it must be an integer >= 1 (members per stack; "
            "1 trains every run alone), e.g. hydra.launcher.stack_size=64"
        )
    return stack_size
