"""M models of one architecture as one batched model: parameters stacked ``[M, ...]``, the forward pass ``vmap``-ed.

``y[m] = f(theta[m], x[m])`` for every member ``m`` at once, where ``f`` is the architecture's forward pass
(``torch.func.functional_call`` on a parameter-free copy of the first member's module) and ``theta[m]`` the member's
parameters, each built exactly as its solo run builds them. Inputs are stacked ``[M, n, ...]``, or shared by all
members (one ``[n, ...]`` tensor, e.g. the held-out split). Members never mix: each member's gradient comes from its
own loss only, so a member whose parameters turn NaN leaves the others untouched.

**Linear stacks** (an ``nn.Sequential`` of ``nn.Linear`` layers and element-wise activations, such as ablate's
MLP) skip ``vmap``: each layer is one batched matmul, ``h = b[m] + h[m] W[m]^T`` (``baddbmm``), which costs about
half of ``vmap``'s forward pass. Their parameters are views into one flat ``[M, P]`` tensor (``flat``, member
``m``'s parameters in row ``m``, in ``parameters()`` order), so that the optimizer updates all of them with one
set of element-wise operations on ``flat`` (``optim_params``) instead of one set per parameter tensor.
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn
from torch.func import functional_call, stack_module_state, vmap

ELEMENTWISE = (nn.ReLU, nn.GELU, nn.Tanh, nn.Sigmoid, nn.SiLU, nn.Identity, nn.LeakyReLU, nn.ELU, nn.Softplus)
"""Activation modules a linear stack may contain: parameter-free, element-wise, the same on any shape."""


def is_linear_stack(module: nn.Module) -> bool:
    """An ``nn.Sequential`` of ``nn.Linear`` layers and ``ELEMENTWISE`` activations only, with a linear layer."""
    layers = list(module.children())
    return (
        isinstance(module, nn.Sequential)
        and any(isinstance(layer, nn.Linear) for layer in layers)
        and all(isinstance(layer, (nn.Linear, *ELEMENTWISE)) for layer in layers)
    )


class StackedModel:
    """The stacked parameters (leaf tensors ``[M, ...]``, in ``nn.Module.parameters()`` order) and buffers."""

    def __init__(self, models: list[nn.Module]) -> None:
        shapes = [[tuple(p.shape) for p in m.parameters()] for m in models]
        if any(s != shapes[0] for s in shapes):
            raise ValueError("stack members must have the same architecture (their parameter shapes differ)")
        params, buffers = stack_module_state(models)  # type: ignore[arg-type]
        self.names = list(params)
        self.params: list[Tensor] = [params[name] for name in self.names]
        self.buffers = buffers
        self.base = copy.deepcopy(models[0]).to("meta")  # the architecture only: no memory for its own weights
        self.linear = is_linear_stack(self.base) and not buffers
        self.flat: Tensor | None = None
        if self.linear:
            self._flatten(torch.cat([p.detach().flatten(1) for p in self.params], dim=1))

    def _flatten(self, flat: Tensor) -> None:
        """Make the parameters leaf views into ``flat`` ``[M, P]`` (module docstring)."""
        self.flat = flat
        self.flat.grad = torch.zeros_like(flat)
        views = self.split(flat)
        self.params = [view.requires_grad_(p.requires_grad) for view, p in zip(views, self.params, strict=True)]

    def split(self, flat: Tensor) -> list[Tensor]:
        """``[M, P]`` tensor laid out as ``flat`` (a copy, a gradient) as one view per parameter, in order."""
        views, offset = [], 0
        for p in self.params:
            size = p[0].numel()
            views.append(flat[:, offset : offset + size].view(flat.shape[0], *p.shape[1:]))
            offset += size
        return views

    @property
    def optim_params(self) -> list[Tensor]:
        """What the optimizer updates: ``[flat]`` (its ``.grad`` filled by ``gather_grads``) or ``params``."""
        return [self.flat] if self.flat is not None else self.params

    def gather_grads(self) -> None:
        """After ``backward``: copy the parameters' gradients into ``flat.grad`` (linear stacks; every parameter of
        a linear stack is used, so every one has a gradient)."""
        if self.flat is not None:
            grads = [p.grad for p in self.params]
            assert all(g is not None for g in grads), "every parameter of a linear stack gets a gradient"
            torch.cat([g.flatten(1) for g in grads], dim=1, out=self.flat.grad)  # type: ignore[union-attr]

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def _call(self, params: dict[str, Tensor], buffers: dict[str, Tensor], x: Tensor) -> Tensor:
        return functional_call(self.base, (params, buffers), (x,))

    def __call__(self, x: Tensor, shared: bool = False, members: slice = slice(None)) -> Tensor:
        """Every member's output ``[M, n, ...]`` for its own inputs ``x[m]``, or for the same ``x`` (``shared``);
        only the ``members`` slice of the stack, if given (``x`` then holds theirs)."""
        params = {name: p[members] for name, p in zip(self.names, self.params, strict=True)}
        if self.linear and x.dim() == (2 if shared else 3):
            return self._linear_forward(params, x)
        buffers = {name: b[members] for name, b in self.buffers.items()}
        return vmap(self._call, in_dims=(0, 0, None if shared else 0))(params, buffers, x)

    def _linear_forward(self, params: dict[str, Tensor], x: Tensor) -> Tensor:
        """``h <- b + h W^T`` per linear layer (``[n, in]`` shared or ``[M, n, in]``), activations as they are."""
        h = x
        for name, layer in self.base.named_children():
            if not isinstance(layer, nn.Linear):
                h = layer(h)
                continue
            weight, bias = params[f"{name}.weight"], params.get(f"{name}.bias")
            if h.dim() == 2:  # shared inputs: [n, in] @ [M, in, out] broadcasts to [M, n, out]
                h = torch.matmul(h, weight.mT)
                h = h if bias is None else h + bias.unsqueeze(1)
            else:
                h = torch.bmm(h, weight.mT) if bias is None else torch.baddbmm(bias.unsqueeze(1), h, weight.mT)
        return h

    def forward_member(self, m: int, x: Tensor) -> Tensor:
        """Member ``m``'s output for ``x`` alone (a pass only some members need)."""
        params = {name: p[m] for name, p in zip(self.names, self.params, strict=True)}
        return self._call(params, {name: b[m] for name, b in self.buffers.items()}, x)

    def train(self, mode: bool = True) -> None:
        self.base.train(mode)

    def select(self, keep: Tensor) -> None:
        """Keep only the members at the indices ``keep`` (new leaf tensors; the others' memory is freed)."""
        if self.flat is not None:
            self._flatten(self.flat[keep].clone())
            return
        self.params = [p.detach()[keep].clone().requires_grad_(p.requires_grad) for p in self.params]
        self.buffers = {name: b[keep].clone() for name, b in self.buffers.items()}

    def member_parameters(self, m: int) -> list[Tensor]:
        """Member ``m``'s parameters as plain tensors (views), in the solo module's order."""
        return [p.detach()[m] for p in self.params]
