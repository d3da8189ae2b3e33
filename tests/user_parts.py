"""Stand-ins for a user's code, importable as ``tests.user_parts:<name>``: good parts and each kind of mistake."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ablate.run.workload import Dataset, DataSpec


def linear(spec: DataSpec, bias: bool = True) -> nn.Module:
    """A linear classifier sized from the data."""
    return nn.Linear(spec.n_features, spec.n_outputs, bias=bias)


def no_spec(width: int = 8) -> nn.Module:
    """A factory that does not take ``spec``: it must fit the default data by itself (32 features, 10 classes)."""
    return nn.Sequential(nn.Linear(32, width), nn.ReLU(), nn.Linear(width, 10))


def wrong_width(spec: DataSpec) -> nn.Module:
    return nn.Linear(spec.n_features, spec.n_outputs + 1)


def raises(spec: DataSpec) -> nn.Module:
    raise ValueError("width must be even")


def not_a_module(spec: DataSpec) -> str:
    return "a model"


class TensorPairs(torch.utils.data.Dataset):
    def __init__(self, x: torch.Tensor, y: torch.Tensor, group: torch.Tensor) -> None:
        self.x, self.y, self.group = x, y, group

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.x[i], self.y[i], self.group[i]


def blobs(n: int = 400, n_features: int = 8, seed: int = 0) -> tuple[TensorPairs, TensorPairs]:
    """Two Gaussian blobs per class, 3 classes, as (train, held_out) torch datasets with groups."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 3, (n,), generator=g)
    group = torch.randint(0, 2, (n,), generator=g)
    centres = torch.randn(3, 2, n_features, generator=g) * 2
    x = centres[y, group] + torch.randn(n, n_features, generator=g)
    cut = n * 3 // 4
    return TensorPairs(x[:cut], y[:cut], group[:cut]), TensorPairs(x[cut:], y[cut:], group[cut:])


def regression(n: int = 200) -> Dataset:
    """An ablate Dataset of a regression task: y = sum(x) + noise."""
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.normal(size=(n, 4)).astype(np.float32))
    y = x.sum(dim=1) + 0.1 * torch.from_numpy(rng.normal(size=n).astype(np.float32))
    zeros = torch.zeros(n, dtype=torch.int64)
    half = n // 2
    return Dataset("regression", x[:half], y[:half], zeros[:half], x[half:], y[half:], zeros[half:], 1, "regression")


def not_data() -> int:
    return 3


def half_warmup(t: int, warmup_steps: int) -> float:
    return 0.5


def too_big(t: int, warmup_steps: int) -> float:
    return 2.0


def step_decay(s: int, decay_steps: int, drop_at: float = 0.5) -> float:
    return 1.0 if s < drop_at * decay_steps else 0.1


def starts_low(s: int, decay_steps: int) -> float:
    return 0.5


class NotAnOptimizer:
    def __init__(self, params: object, lr: float) -> None:
        self.lr = lr


def smooth_l1(output: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """A regression loss of the user's: Huber, per example."""
    return torch.nn.functional.smooth_l1_loss(output.squeeze(-1), y, reduction="none")


def focal(output: torch.Tensor, y: torch.Tensor, gamma: float = 2.0) -> torch.Tensor:
    """Focal loss (Lin et al. 2017) per example: ``-(1 - p_y)^gamma log p_y``."""
    log_p = torch.log_softmax(output, dim=-1).gather(-1, y.unsqueeze(-1)).squeeze(-1)
    return -((1 - log_p.exp()) ** gamma) * log_p


def mean_loss(output: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.cross_entropy(output, y)
