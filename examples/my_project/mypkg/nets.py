"""A residual MLP: the model this project studies warmup on."""

from __future__ import annotations

import torch
from torch import nn

from ablate.run.workload import DataSpec


class ResMLP(nn.Module):
    """``x -> Linear -> [x + W2 relu(LN(W1 x))] * depth -> LN -> Linear``; sized from the data's ``spec``."""

    def __init__(self, spec: DataSpec, width: int = 64, depth: int = 2) -> None:
        super().__init__()
        self.inp = nn.Linear(spec.n_features, width)
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.LayerNorm(width), nn.Linear(width, 2 * width), nn.ReLU(), nn.Linear(2 * width, width))
            for _ in range(depth)
        )
        self.out = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, spec.n_outputs))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.inp(x)
        for block in self.blocks:
            h = h + block(h)
        return self.out(h)
