"""Regression on a random teacher network: the curvature testbed (MSE loss, full-batch gradient descent).

Why it exists: the curvature account of warmup (Gilmer et al. 2021; Kalra & Barkeshli 2024) is cleanest for
gradient descent on a mean-squared-error loss, where ``2 / sharpness`` is the exact stability limit of the update
and a rate above it makes the loss blow up or "catapult" (spike, then settle where the sharpness is lower).
"""

from __future__ import annotations

import numpy as np
import torch

from ablate.run.data.config import TeacherConfig
from ablate.run.data.dataset import Dataset
from ablate.run.objective import REGRESSION


def make_teacher(cfg: TeacherConfig) -> Dataset:
    """Inputs ``x ~ N(0, I_d)``; targets ``y = v . tanh(W x) + noise_std * N(0, 1)`` with ``W ~ N(0, 1/d)``
    (``teacher_width x d``) and ``v ~ N(0, 1/teacher_width)``, all drawn from ``data.seed``; then standardised
    with the training targets' mean and standard deviation (so predicting the mean costs an MSE of about 1).

    The group of an example is its bin of the first input feature: ``n_groups`` bins with equal training counts
    (edges at the training quantiles), so a group is a set of related inputs that still spans the targets.
    """
    rng = np.random.default_rng(cfg.seed)
    w = rng.normal(0.0, 1.0 / np.sqrt(cfg.n_features), size=(cfg.teacher_width, cfg.n_features))
    v = rng.normal(0.0, 1.0 / np.sqrt(cfg.teacher_width), size=cfg.teacher_width)

    def draw(n: int) -> tuple[np.ndarray, np.ndarray]:
        x = rng.normal(0.0, 1.0, size=(n, cfg.n_features))
        y = np.tanh(x @ w.T) @ v + cfg.noise_std * rng.normal(0.0, 1.0, size=n)
        return x, y

    train_x, train_y = draw(cfg.n_train)
    eval_x, eval_y = draw(cfg.n_eval)
    mean, std = train_y.mean(), train_y.std() + 1e-12
    edges = np.quantile(train_x[:, 0], np.linspace(0, 1, cfg.n_groups + 1)[1:-1])

    def tensors(x: np.ndarray, y: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        group = np.searchsorted(edges, x[:, 0], side="right")
        return (
            torch.from_numpy(x.astype(np.float32)),
            torch.from_numpy(((y - mean) / std).astype(np.float32)),
            torch.from_numpy(group.astype(np.int64)),
        )

    return Dataset("teacher", *tensors(train_x, train_y), *tensors(eval_x, eval_y), n_classes=1, task=REGRESSION)
