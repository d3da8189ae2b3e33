"""``hydra/launcher=stacked``: train a study's compatible runs as stacks, one stack after another, in this process.

Runs that share an architecture, data and loop settings are trained as one batched model of up to
``stack_size`` members (``ablate.run.stacked``); each member writes the record its solo run would
(``ablate.record.stack_runner``). Runs that cannot stack train alone here, after one line saying why. A stack that
raises marks its members ``failed`` and the next stack starts. The ``local`` and ``slurm`` launchers stack too, with
their own ``stack_size`` (one stack per job process or SLURM job).
"""

# no `from __future__ import annotations`: Hydra's plugin scanner runs this module before it is in
# sys.modules, where dataclasses cannot resolve string annotations
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from hydra.core.config_store import ConfigStore
from hydra.core.utils import JobReturn, configure_log, filter_overrides, setup_globals
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig

from ablate.study.stacks import DEFAULT_STACK_SIZE, check_stack_size, plan_stacks, run_stack, sweep_configs

log = logging.getLogger(__name__)


@dataclass
class StackedLauncherConf:
    _target_: str = "hydra_plugins.ablate_launcher.stacked_launcher.StackedLauncher"
    stack_size: int = DEFAULT_STACK_SIZE  # most members per stack; 1: every run alone (the basic launcher's way)


# Hydra imports every module under hydra_plugins/ when it starts; that is when this config is registered.
ConfigStore.instance().store(group="hydra/launcher", name="ablate_stacked", node=StackedLauncherConf, provider="ablate")


class StackedLauncher(Launcher):
    def __init__(self, stack_size: int = DEFAULT_STACK_SIZE) -> None:
        self.stack_size = check_stack_size(stack_size)
        self.config: DictConfig | None = None
        self.hydra_context: HydraContext | None = None
        self.task_function: TaskFunction | None = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config = config
        self.hydra_context = hydra_context
        self.task_function = task_function

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        setup_globals()
        assert self.config is not None and self.hydra_context is not None
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
        configs = sweep_configs(self.hydra_context, self.config, job_overrides, initial_job_idx)
        stacks = plan_stacks(configs, self.stack_size)
        returns: list[JobReturn | None] = [None] * len(configs)
        for stack in stacks:
            for i in stack:
                log.info(f"\t#{initial_job_idx + i} : {' '.join(filter_overrides(job_overrides[i]))}")
            for i, ret in zip(stack, run_stack(self.hydra_context, [configs[i] for i in stack]), strict=True):
                returns[i] = ret
            configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        assert all(r is not None for r in returns)
        return returns  # type: ignore[return-value]
