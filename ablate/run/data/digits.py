"""scikit-learn's bundled 8x8 digits (real data, shipped with scikit-learn, no download)."""

from __future__ import annotations

import numpy as np
import torch

from ablate.run.data.config import DIGITS_TOTAL, DigitsConfig
from ablate.run.data.dataset import Dataset


def load_digits_split(cfg: DigitsConfig) -> Dataset:
    """A seeded train/held-out split, stratified by class; pixels standardised with train statistics.

    The group of an example is its class (the natural cluster of related examples in this dataset).
    """
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    assert len(y) == DIGITS_TOTAL
    rng = np.random.default_rng(cfg.seed)
    n_eval = round(DIGITS_TOTAL * cfg.eval_fraction)
    # stratified: take the same share of every class into the held-out split
    eval_mask = np.zeros(len(y), dtype=bool)
    for label in range(10):
        members = rng.permutation(np.flatnonzero(y == label))
        eval_mask[members[: round(len(members) * cfg.eval_fraction)]] = True
    # fix rounding so the held-out split has exactly n_eval examples
    surplus = int(eval_mask.sum()) - n_eval
    if surplus > 0:
        eval_mask[rng.choice(np.flatnonzero(eval_mask), surplus, replace=False)] = False
    elif surplus < 0:
        eval_mask[rng.choice(np.flatnonzero(~eval_mask), -surplus, replace=False)] = True
    mean = x[~eval_mask].mean(axis=0)
    std = x[~eval_mask].std(axis=0) + 1e-6  # corner pixels are always 0
    x = ((x - mean) / std).astype(np.float32)

    def part(mask: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        labels = torch.from_numpy(y[mask].astype(np.int64))
        return torch.from_numpy(x[mask]), labels, labels.clone()

    train_x, train_y, train_group = part(~eval_mask)
    eval_x, eval_y, eval_group = part(eval_mask)
    return Dataset("digits", train_x, train_y, train_group, eval_x, eval_y, eval_group, 10)
