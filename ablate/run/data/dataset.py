"""The in-memory dataset every run trains on: a train split and a held-out split, as tensors."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Dataset:
    """Features ``x`` (float32, ``[n, n_features]``; int64 tokens ``[n, L]`` for sequences), targets ``y`` and each
    example's group.

    ``task`` (``ablate.run.objective``) says what ``y`` is: class indices (int64 ``[n]`` or ``[n, L]``) for
    ``classification``, real numbers (float32 ``[n]``) for ``regression``. ``n_classes`` is the model's output
    width: the number of classes (the vocabulary for sequences), 1 for regression.
    ``*_group`` is the related-examples cluster an example belongs to (a Gaussian cluster, a digit class);
    data skew and group-wise evaluation use it.
    """

    name: str
    train_x: torch.Tensor
    train_y: torch.Tensor
    train_group: torch.Tensor
    eval_x: torch.Tensor
    eval_y: torch.Tensor
    eval_group: torch.Tensor
    n_classes: int
    task: str = "classification"

    @property
    def n_features(self) -> int:
        return self.train_x.shape[1]

    @property
    def n_train(self) -> int:
        return self.train_x.shape[0]

    def to(self, device: torch.device) -> Dataset:
        moved = {k: v.to(device) for k, v in self.__dict__.items() if isinstance(v, torch.Tensor)}
        return Dataset(name=self.name, n_classes=self.n_classes, task=self.task, **moved)
