"""Hydra's basic sweeper, plus: every job's config is validated before any job starts.

Hydra's ``BasicSweeper`` already composes each job of a batch before launching it, to catch composition
errors early. ``ValidatingSweeper`` also turns each composed config into typed objects and validates them,
so ``python -m ablate -m warmup=0,100,5000 steps=1000`` stops with one line before any run trains.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from omegaconf import OmegaConf, open_dict

from ablate.config import ConfigError, to_typed


@dataclass
class ValidatingSweeperConf:
    _target_: str = "hydra_plugins.ablate_sweeper.ablate_sweeper.ValidatingSweeper"
    max_batch_size: Any = None
    params: Any = field(default_factory=dict)


class ValidatingSweeper(BasicSweeper):
    def validate_batch_is_legal(self, batch: Sequence[Sequence[str]]) -> None:
        assert self.hydra_context is not None and self.config is not None
        loader = self.hydra_context.config_loader
        for overrides in batch:
            cfg = loader.load_sweep_config(master_config=self.config, sweep_overrides=list(overrides))
            with open_dict(cfg):
                del cfg["hydra"]
            OmegaConf.set_readonly(cfg, False)
            try:
                to_typed(cfg)
            except ConfigError as err:
                job = " ".join(overrides) or "(no overrides)"
                print(f"error: in run [{job}]: {err}; nothing was run", file=sys.stderr)
                sys.exit(2)
