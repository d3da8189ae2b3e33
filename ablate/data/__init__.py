"""Datasets (as tensors on the run's device) and the batch-order samplers."""

from __future__ import annotations

import torch

from ablate.config import ClustersConfig, DigitsConfig
from ablate.data.clusters import make_clusters
from ablate.data.dataset import Dataset
from ablate.data.digits import load_digits_split
from ablate.data.samplers import IIDBatchSampler

__all__ = ["Dataset", "IIDBatchSampler", "build_dataset"]


def build_dataset(cfg: object, device: torch.device) -> Dataset:
    """The dataset for a ``data`` config group option, moved to ``device``."""
    if isinstance(cfg, ClustersConfig):
        dataset = make_clusters(cfg)
    elif isinstance(cfg, DigitsConfig):
        dataset = load_digits_split(cfg)
    else:
        raise TypeError(f"unknown data config {cfg!r}")
    return dataset.to(device)
