"""Every job's composed config for a launcher, as Hydra's ``load_sweep_config`` makes it, at a fraction of the cost.

A launcher needs each job's whole config, ``hydra`` node included: ``run_job`` writes it to the job's ``.hydra/``
files. Hydra composes every job from scratch (~0.1 s each: the defaults list, every YAML file), so a 64-run
stack spent ~8 s composing before its first step. As in ``ablate.study.grid``, only a job's config-group overrides
(``optimizer=adam``, ``+sweep=<name>``) need a composition, once per distinct combination; the value overrides
(``lr=0.1``, ``+key=v``, ``~key``) are then applied to a copy of it with Hydra's own function, in order, as Hydra
applies them after composing. What Hydra's ``_load_configuration_impl`` writes into the ``hydra`` node from the
overrides is filled in the same way:

- ``hydra.overrides.task``: the job's own overrides, in order, but its ``hydra.*`` ones;
- ``hydra.overrides.hydra``: the master's ``hydra.*`` overrides, then the job's (ablate's sweeper gives each job
  its ``hydra.sweep.subdir``, a value override of the ``hydra`` node, applied like the others);
- ``hydra.job.env_set``: the variables of ``hydra.job.env_copy``, copied after the overrides;
- ``hydra.job.override_dirname``: Hydra's ``get_overrides_dirname`` of the task overrides.

Anything else comes from the group combination, which the cached config shares. A job this path does not cover
(an override it cannot parse, or a failure while applying one) is composed by
Hydra in full, which also gives Hydra's own error. ``tests/test_sweep_compose.py`` checks the configs equal Hydra's,
YAML for YAML.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Sequence
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

from ablate.study.grid import Grid, GridCompositionError


class SweepComposer:
    """The composed config of each job of one multirun (``loader``: Hydra's config loader; ``master``: the
    multirun's config), with one full composition per combination of group overrides (``compositions``)."""

    def __init__(self, loader: Any, master: DictConfig) -> None:
        self.loader = loader
        self.master = master
        self.grid = Grid(loader, master)
        self.bases: dict[tuple[str, ...], DictConfig] = {}
        self.compositions = 0

    def full(self, job: Sequence[str]) -> DictConfig:
        """Hydra's own composition of ``job``."""
        self.compositions += 1
        return self.loader.load_sweep_config(master_config=self.master, sweep_overrides=list(job))  # type: ignore[no-any-return]

    def compose(self, job: Sequence[str]) -> DictConfig:
        """``job``'s config, equal to ``load_sweep_config(master, job)`` (module docstring)."""
        if not self.grid.can_split:
            return self.full(job)
        try:
            parsed = [self.grid.parse(line)[0] for line in job]
        except GridCompositionError:
            return self.full(job)
        is_value = [self.grid.is_value_override(override, hydra_values=True) for override in parsed]
        groups = tuple(line for line, value in zip(job, is_value, strict=True) if not value)
        base = self.bases.get(groups)
        if base is None:
            base = self.bases[groups] = self.full(groups)
        cfg = copy.deepcopy(base)
        task = [override for override in parsed if not override.is_hydra_override()]
        try:
            from hydra._internal.config_loader_impl import ConfigLoaderImpl, get_overrides_dirname

            ConfigLoaderImpl._apply_overrides_to_config([o for o, v in zip(parsed, is_value, strict=True) if v], cfg)
            dirname = cfg.hydra.job.config.override_dirname
            with open_dict(cfg.hydra):
                cfg.hydra.overrides.hydra = [*self.master.hydra.overrides.hydra, *_hydra_lines(parsed)]
                cfg.hydra.overrides.task = [override.input_line for override in task]
                for key in cfg.hydra.job.env_copy:  # after the overrides, as Hydra does
                    cfg.hydra.job.env_set[key] = os.environ[key]
                cfg.hydra.job.override_dirname = get_overrides_dirname(
                    overrides=task, kv_sep=dirname.kv_sep, item_sep=dirname.item_sep, exclude_keys=dirname.exclude_keys
                )
        except Exception:  # Hydra's composition gives its own error, or the config
            return self.full(job)
        OmegaConf.copy_cache(from_config=self.master, to_config=cfg)
        return cfg


def _hydra_lines(parsed: list[Any]) -> list[str]:
    return [override.input_line for override in parsed if override.is_hydra_override()]
