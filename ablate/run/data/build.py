"""Building a dataset from its config, as tensors on the run's device."""

from __future__ import annotations

import torch

from ablate.run.data.clusters import make_clusters
from ablate.run.data.config import ClustersConfig, DigitsConfig, SortConfig, TeacherConfig
from ablate.run.data.dataset import Dataset
from ablate.run.data.digits import load_digits_split
from ablate.run.data.sequence import make_sort_task
from ablate.run.data.teacher import make_teacher


def build_dataset(cfg: object, device: torch.device) -> Dataset:
    """The dataset for a ``data`` config group option, moved to ``device``."""
    if isinstance(cfg, ClustersConfig):
        dataset = make_clusters(cfg)
    elif isinstance(cfg, DigitsConfig):
        dataset = load_digits_split(cfg)
    elif isinstance(cfg, SortConfig):
        dataset = make_sort_task(
            cfg.seed, cfg.n_train, cfg.n_eval, cfg.seq_len, cfg.vocab_size, cfg.n_groups, cfg.name, cfg.format
        )
    elif isinstance(cfg, TeacherConfig):
        dataset = make_teacher(cfg)
    else:
        raise TypeError(f"unknown data config {cfg!r}")
    return dataset.to(device)
