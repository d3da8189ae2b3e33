"""Building a run's dataset from its config, as tensors on the run's device: the built-in generators, ``.npz``
files and the user's data factories, through one function, ``build_dataset``."""

from __future__ import annotations

from typing import Any

import torch

from ablate.checks import ConfigError, first_line
from ablate.run.data.clusters import make_clusters
from ablate.run.data.config import (
    ClustersConfig,
    CustomDataConfig,
    DigitsConfig,
    NpzConfig,
    SortConfig,
    TeacherConfig,
)
from ablate.run.data.dataset import Dataset
from ablate.run.data.digits import load_digits_split
from ablate.run.data.sequence import make_sort_task
from ablate.run.data.teacher import make_teacher
from ablate.run.data.user import from_factory, load_npz
from ablate.run.imports import resolve


def load(cfg: Any) -> Dataset:
    """The dataset of a ``data`` config group option, on the CPU."""
    if isinstance(cfg, ClustersConfig):
        return make_clusters(cfg)
    if isinstance(cfg, DigitsConfig):
        return load_digits_split(cfg)
    if isinstance(cfg, SortConfig):
        return make_sort_task(
            cfg.seed, cfg.n_train, cfg.n_eval, cfg.seq_len, cfg.vocab_size, cfg.n_groups, cfg.name, cfg.format
        )
    if isinstance(cfg, TeacherConfig):
        return make_teacher(cfg)
    if isinstance(cfg, NpzConfig):
        return load_npz(cfg.path, cfg.task, cfg.eval_fraction, cfg.seed)
    if isinstance(cfg, CustomDataConfig):
        key = f"data.target={cfg.target}"
        factory = resolve("data.target", cfg.target)
        try:
            result = factory(**cfg.args)
        except ConfigError:
            raise
        except Exception as err:
            message = first_line(err)
            raise ConfigError(f"{key} raised {type(err).__name__} while building the data: {message}") from None
        return from_factory(key, result, cfg.task)
    raise TypeError(f"unknown data config {cfg!r}")


def build_dataset(cfg: Any, device: torch.device) -> Dataset:
    """The dataset for a ``data`` config group option, moved to ``device``."""
    return load(cfg).to(device)
