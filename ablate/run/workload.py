"""The workload interface: what a run trains, built-in or the user's own, through one code path.

A workload is a **model factory**, a **dataset** and its **task kind**; the optimizer and schedule are their own
config groups (``ablate/run/optim``, ``ablate/run/schedules.py``). The built-in workloads are written on this
interface too (``ablate/run/models/build.py``, ``ablate/run/data/build.py``). Full guide: docs/workloads.md.

**Dataset.** A data factory (``data.target`` or ``_target_`` in a data config file) is called with its config
arguments and returns either a ``Dataset`` (train and held-out tensors, optional groups), or a pair
``(train, held_out)`` of ``torch.utils.data.Dataset`` whose items are ``(x, y)`` or ``(x, y, group)``; a pair
is read into tensors once. ``x`` is float features ``[n, ...]`` or int64 token ids ``[n, L]``; ``y`` is int64
class indices ``[n]`` (or ``[n, L]`` per token, ``-100`` = not scored) for ``classification``, float ``[n]`` for
``regression``. Groups (int64 ``[n]``, ``0 .. G-1``) name clusters of related examples: data skew favours one
and evaluation reports the favoured group against the rest; without them every example is group 0.

**Task kind** picks the loss, the metrics and the chance level (``ablate/run/objective.py``):
``classification``: cross-entropy, accuracy, chance = predicting the training label frequencies;
``regression``: mean squared error, no accuracy, chance = predicting the training mean.

**Model factory** (``model.target`` or ``_target_`` in a model config file): any callable that returns an
``nn.Module``, called with its config arguments plus ``spec=DataSpec(...)`` when it takes a ``spec`` argument
(or ``**kwargs``), so it can size its input and output layers from the data. Its output must be
``[n, n_outputs]`` (``[n, L, n_outputs]`` per token) for classification and ``[n]`` or ``[n, 1]`` for regression;
ablate checks this on two training examples before any run starts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from ablate.checks import ConfigError, first_line
from ablate.run.data.dataset import Dataset
from ablate.run.objective import CLASSIFICATION, REGRESSION

__all__ = ["DataSpec", "Dataset", "check_model_fits", "spec_of"]


@dataclass(frozen=True)
class DataSpec:
    """What the data tells a model factory."""

    input_shape: tuple[int, ...]  # one example's shape: (n_features,), (L,) token ids, (C, H, W) ...
    n_outputs: int  # classes (the vocabulary for token targets), 1 for regression
    task: str  # classification or regression
    n_groups: int  # groups of related examples (1 when the data has none)
    tokens: bool  # x holds int64 token ids (embed them), not float features

    @property
    def n_features(self) -> int:
        """Input values per example: the product of ``input_shape``."""
        return math.prod(self.input_shape)


def spec_of(data: Dataset) -> DataSpec:
    return DataSpec(
        input_shape=tuple(data.train_x.shape[1:]),
        n_outputs=data.n_classes,
        task=data.task,
        n_groups=int(max(int(data.train_group.max()), int(data.eval_group.max())) + 1) if data.n_train else 1,
        tokens=not torch.is_floating_point(data.train_x),
    )


def check_model_fits(key: str, model: nn.Module, data: Dataset) -> None:
    """The model's output on two training examples fits the task; raise ConfigError with one line otherwise."""
    if not isinstance(model, nn.Module):
        raise ConfigError(f"{key} returned {type(model).__name__}, not a torch.nn.Module: return the model itself")
    x = data.train_x[:2]
    try:
        with torch.no_grad():
            out = model(x)
    except Exception as err:
        message = first_line(err)
        raise ConfigError(
            f"{key}: the model fails on a batch of inputs of shape {list(x.shape)} ({x.dtype}): "
            f"{type(err).__name__}: {message}"
        ) from None
    y = data.train_y[:2]
    if data.task == CLASSIFICATION:
        expected = [*y.shape, data.n_classes]
        ok = isinstance(out, torch.Tensor) and list(out.shape) == expected
        want = f"{expected} (batch{', positions' if y.dim() > 1 else ''}, {data.n_classes} classes)"
    else:
        assert data.task == REGRESSION
        ok = isinstance(out, torch.Tensor) and (list(out.shape) == [2] or list(out.shape) == [2, 1])
        want = "[2] or [2, 1] (one real value per example)"
    if not ok:
        got = list(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ConfigError(
            f"{key}: the model's output {got} on 2 examples does not fit data={data.name} ({data.task}): expected "
            f"{want}; size the last layer from spec.n_outputs"
        )
