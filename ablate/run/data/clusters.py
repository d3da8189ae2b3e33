"""Synthetic classification: a mixture of Gaussian clusters per class, generated from ``data.seed``."""

from __future__ import annotations

import numpy as np
import torch

from ablate.run.data.config import ClustersConfig
from ablate.run.data.dataset import Dataset


def make_clusters(cfg: ClustersConfig) -> Dataset:
    """``K = n_classes * clusters_per_class`` centres ``mu_k ~ N(0, center_scale^2 I)``; cluster ``k`` has
    label ``k // clusters_per_class``; an example of cluster ``k`` is ``mu_k + N(0, noise_scale^2 I)``,
    its cluster drawn uniformly. Train and held-out examples are independent draws of the same mixture.

    The group of an example is its cluster's index within its class, ``k % clusters_per_class``: group ``g``
    holds one cluster of every class, a set of related examples that still spans all labels.
    """
    rng = np.random.default_rng(cfg.seed)
    n_clusters = cfg.n_classes * cfg.clusters_per_class
    centers = rng.normal(0.0, cfg.center_scale, size=(n_clusters, cfg.n_features))

    def draw(n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        cluster = rng.integers(0, n_clusters, size=n)
        x = centers[cluster] + rng.normal(0.0, cfg.noise_scale, size=(n, cfg.n_features))
        label = cluster // cfg.clusters_per_class
        return (
            torch.from_numpy(x.astype(np.float32)),
            torch.from_numpy(label.astype(np.int64)),
            torch.from_numpy((cluster % cfg.clusters_per_class).astype(np.int64)),
        )

    train_x, train_y, train_group = draw(cfg.n_train)
    eval_x, eval_y, eval_group = draw(cfg.n_eval)
    return Dataset("clusters", train_x, train_y, train_group, eval_x, eval_y, eval_group, cfg.n_classes)
