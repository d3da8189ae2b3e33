"""M models of one architecture as one batched model: parameters stacked ``[M, ...]``, the forward pass ``vmap``-ed.

``y[m] = f(theta[m], x[m])`` for every member ``m`` at once, where ``f`` is the architecture's forward pass
(``torch.func.functional_call`` on a parameter-free copy of the first member's module) and ``theta[m]`` the member's
parameters, each built exactly as its solo run builds them. Inputs are stacked ``[M, n, ...]``, or shared by all
members (one ``[n, ...]`` tensor, e.g. the held-out split). Members never mix: each member's gradient comes from its
own loss only, so a member whose parameters turn NaN leaves the others untouched.
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap


class StackedModel:
    """The stacked parameters (leaf tensors ``[M, ...]``, in ``nn.Module.parameters()`` order) and buffers."""

    def __init__(self, models: list[nn.Module]) -> None:
        shapes = [[tuple(p.shape) for p in m.parameters()] for m in models]
        if any(s != shapes[0] for s in shapes):
            raise ValueError("stack members must have the same architecture (their parameter shapes differ)")
        params, buffers = stack_module_state(models)  # type: ignore[arg-type]
        self.names = list(params)
        self.params: list[torch.Tensor] = [params[name] for name in self.names]
        self.buffers = buffers
        self.base = copy.deepcopy(models[0]).to("meta")  # the architecture only: no memory for its own weights

    def _call(self, params: dict[str, torch.Tensor], buffers: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        return functional_call(self.base, (params, buffers), (x,))

    def __call__(self, x: torch.Tensor, shared: bool = False) -> torch.Tensor:
        """Every member's output ``[M, n, ...]`` for its own inputs ``x[m]``, or for the same ``x`` (``shared``)."""
        params = dict(zip(self.names, self.params, strict=True))
        return vmap(self._call, in_dims=(0, 0, None if shared else 0))(params, self.buffers, x)

    def forward_member(self, m: int, x: torch.Tensor) -> torch.Tensor:
        """Member ``m``'s output for ``x`` alone (a pass only some members need)."""
        params = {name: p[m] for name, p in zip(self.names, self.params, strict=True)}
        return self._call(params, {name: b[m] for name, b in self.buffers.items()}, x)

    def train(self, mode: bool = True) -> None:
        self.base.train(mode)

    def select(self, keep: torch.Tensor) -> None:
        """Keep only the members at the indices ``keep`` (new leaf tensors; the others' memory is freed)."""
        self.params = [p.detach()[keep].clone().requires_grad_(p.requires_grad) for p in self.params]
        self.buffers = {name: b[keep].clone() for name, b in self.buffers.items()}

    def member_parameters(self, m: int) -> list[torch.Tensor]:
        """Member ``m``'s parameters as plain tensors (views), in the solo module's order."""
        return [p.detach()[m] for p in self.params]
