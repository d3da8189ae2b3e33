"""Optimizers that update M independent models ("members") at once.

Every parameter is one stacked tensor of shape [M, ...]: member m's parameter is ``p[m]``. The members share the
optimizer's kind and its structure flags (``stack_key``) but each has its own hyperparameters and its own learning
rate each step.

The maths is torch.optim's single-tensor code (``torch/optim/{sgd,adam,radam,rmsprop}.py``, ``_single_tensor_*``)
operation for operation, so that member m follows a solo ``torch.optim`` run to float32 rounding (bitwise on a CPU
where the tests were measured). Where torch uses a Python scalar, this module uses a [M] tensor broadcast as
[M, 1, 1, ...]:

- per-member hyperparameters and the coefficients derived from them each step (bias corrections, RAdam's
  rectification, ``1 - lr * weight_decay``, ...) are computed in float64, as torch computes its Python floats, and
  cast to the parameter's dtype, as torch's kernels cast a scalar argument;
- a scalar ``alpha=``/``value=`` becomes a tensor factor applied first, as the kernels apply it first:
  ``p.add_(g, alpha=-lr)`` is ``p.addcmul_(g, -lr)`` and ``p.addcdiv_(a, d, value=-s)`` is ``p.addcdiv_(-s * a, d)``;
- a branch on a per-member value (momentum 0 or not, RAdam's ``rho_t > 5``) is a per-member mask (``torch.where``).

Not supported (not reachable from ablate's configs): ``maximize``, sparse or complex gradients.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ablate.run.stacked.compat import STACKABLE_OPTIMIZERS, optimizer_key

STACKABLE = STACKABLE_OPTIMIZERS
"""Optimizer kinds (``optimizer.name``) with a stacked version."""
stack_key = optimizer_key  # what members must share (ablate.run.stacked.compat)

_HYPERPARAMETERS: dict[str, tuple[str, ...]] = {
    "sgd": ("weight_decay",),
    "momentum": ("momentum", "dampening", "weight_decay"),
    "adam": ("beta1", "beta2", "eps", "weight_decay"),
    "adamw": ("beta1", "beta2", "eps", "weight_decay"),
    "radam": ("beta1", "beta2", "eps", "weight_decay"),
    "rmsprop": ("alpha", "eps", "momentum", "weight_decay"),
}
"""Kind -> the config fields that may differ between the members of one stack."""


class _Columns:
    """Per-member [M] coefficients viewed as [M, 1, 1, ...] to broadcast over a parameter of ``ndim`` dimensions."""

    def __init__(self, coefficients: dict[str, Tensor], ndim: int) -> None:
        self.coefficients = coefficients
        self.shape = (-1,) + (1,) * (ndim - 1)

    def __getitem__(self, name: str) -> Tensor:
        return self.coefficients[name].view(self.shape)


class StackedOptimizer:
    """One torch.optim optimizer per member, run as whole-stack tensor ops.

    ``cfgs``: one optimizer config per member, all with the same ``stack_key``; ``params``: the stacked leaf
    tensors, each [M, ...]. The hyperparameters are kept as float64 [M] tensors on the parameters' device (float32
    on MPS, which has no float64) in ``hyper``; the state as tensors [M, ...] in ``state`` (one dict per parameter,
    torch's names); the step count of each parameter (t = 1 on its first step) in ``steps``.
    """

    def __init__(self, cfgs: list[Any], params: list[Tensor]) -> None:
        if not cfgs or not params:
            raise ValueError("a stacked optimizer needs at least one member and one parameter")
        keys = {stack_key(cfg) for cfg in cfgs}
        if len(keys) != 1:
            raise ValueError(
                f"the members of one stack must share stack_key (name, nesterov, amsgrad, centered): {keys}"
            )
        self.kind, self.nesterov, self.amsgrad, self.centered = keys.pop()
        if self.kind not in STACKABLE:
            raise ValueError(f"optimizer={self.kind} has no stacked version (stacked: {', '.join(STACKABLE)})")
        if self.nesterov and any(cfg.momentum <= 0 or cfg.dampening != 0 for cfg in cfgs):
            # torch.optim.SGD refuses these too
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        for p in params:
            if p.dim() == 0 or p.shape[0] != len(cfgs):
                raise ValueError(f"a parameter of shape {tuple(p.shape)} is not stacked over {len(cfgs)} members")
        self.device = params[0].device
        self.scalar_dtype = torch.float32 if self.device.type == "mps" else torch.float64
        self.hyper = {
            name: torch.tensor([float(getattr(cfg, name)) for cfg in cfgs], dtype=self.scalar_dtype, device=self.device)
            for name in _HYPERPARAMETERS[self.kind]
        }
        self.state: list[dict[str, Tensor]] = [{} for _ in params]
        self.steps = [0 for _ in params]
        self._read_flags()

    @property
    def members(self) -> int:
        """M, the number of members in the stack (after ``select``)."""
        return int(self.hyper["weight_decay"].shape[0])

    def _read_flags(self) -> None:
        """Host-side switches that let a homogeneous stack skip work: any weight decay at all, any / every member
        with momentum > 0 (torch's branch: SGD's ``momentum != 0``, RMSprop's ``momentum > 0``; both refuse < 0)."""
        self._decay = bool((self.hyper["weight_decay"] != 0).any())
        has_momentum = self.hyper["momentum"] > 0 if "momentum" in self.hyper else torch.zeros(1, dtype=torch.bool)
        self._any_momentum = bool(has_momentum.any())
        self._all_momentum = bool(has_momentum.all())

    def _coefficients(self, t: int, lr: Tensor) -> dict[str, Tensor]:
        """This step's per-member factors, [M] in float64, for step count t (1 on the first step) and rates ``lr``.

        Adam family: ``bc1 = 1 - beta1^t``, ``bc2 = 1 - beta2^t``, ``step_size = lr / bc1``; AdamW's decay factor
        ``1 - lr * weight_decay``; RAdam's ``rho_inf = 2 / (1 - beta2) - 1``, ``rho_t = rho_inf - 2 t beta2^t / bc2``,
        ``rect = sqrt((rho_t - 4)(rho_t - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_t))`` where ``rho_t > 5``
        (the ``rectify`` mask), else 1.
        """
        h = self.hyper
        c = {"neg_lr": -lr, "weight_decay": h["weight_decay"]}
        if "momentum" in h:
            c["momentum"] = h["momentum"]
            c["has_momentum"] = h["momentum"] > 0
        if self.kind == "momentum":
            c["one_minus_dampening"] = 1 - h["dampening"]
        elif self.kind == "rmsprop":
            c.update(alpha=h["alpha"], one_minus_alpha=1 - h["alpha"], eps=h["eps"])
        elif self.kind in ("adam", "adamw", "radam"):
            beta1, beta2 = h["beta1"], h["beta2"]
            bc1 = 1 - beta1**t
            bc2 = 1 - beta2**t
            c.update(one_minus_beta1=1 - beta1, beta2=beta2, one_minus_beta2=1 - beta2, eps=h["eps"])
            c["bc2_sqrt"] = bc2**0.5
            if self.kind == "adamw":
                c["decay"] = 1 - lr * h["weight_decay"]
            if self.kind in ("adam", "adamw"):
                c["neg_step_size"] = -(lr / bc1)
            else:
                rho_inf = 2 / (1 - beta2) - 1
                rho_t = rho_inf - 2 * t * (beta2**t) / bc2
                rect = ((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)) ** 0.5
                rectify = rho_t > 5.0
                c.update(bc1=bc1, lr=lr, rectify=rectify, rect=torch.where(rectify, rect, 1.0))
        return c

    @torch.no_grad()
    def step(self, params: list[Tensor], lr: Tensor) -> None:
        """Update every parameter in place from its ``.grad`` (one skipped, its step count too, where ``.grad`` is
        None, as torch does). ``params``: this step's stacked leaf tensors, in the order given at construction (new
        tensors after ``select``); ``lr``: [M] rates of this step, per member (float64 matches torch's Python float
        exactly; a float32 ``lr`` is the rate rounded to float32)."""
        if len(params) != len(self.state):
            raise ValueError(f"{len(params)} parameters given, the optimizer was built for {len(self.state)}")
        if lr.shape != (self.members,):
            raise ValueError(f"lr has shape {tuple(lr.shape)}, expected ({self.members},): one rate per member")
        lr = lr.to(device=self.device, dtype=self.scalar_dtype)
        update = {
            "sgd": self._sgd,
            "momentum": self._sgd,
            "adam": self._adam,
            "adamw": self._adam,
            "radam": self._radam,
            "rmsprop": self._rmsprop,
        }[self.kind]
        cast: dict[tuple[int, torch.dtype], dict[str, Tensor]] = {}
        for i, p in enumerate(params):
            if p.grad is None:
                continue
            self.steps[i] += 1
            key = (self.steps[i], p.dtype)
            if key not in cast:
                coefficients = self._coefficients(self.steps[i], lr)
                cast[key] = {k: v.to(p.dtype) if v.is_floating_point() else v for k, v in coefficients.items()}
            update(p, p.grad, self.state[i], _Columns(cast[key], p.dim()))

    def _sgd(self, p: Tensor, grad: Tensor, state: dict[str, Tensor], c: _Columns) -> None:
        """SGD (torch's ``_single_tensor_sgd``): ``g += wd p``; with momentum mu > 0: ``buf = g`` on the first step,
        else ``buf = mu buf + (1 - dampening) g``; ``d = g + mu buf`` (nesterov) or ``buf``; ``p -= lr d``."""
        if self._decay:
            grad = torch.addcmul(grad, p, c["weight_decay"])
        if self.kind == "momentum" and self._any_momentum:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = grad.clone()
            else:
                buf.mul_(c["momentum"]).addcmul_(grad, c["one_minus_dampening"])
            direction = torch.addcmul(grad, buf, c["momentum"]) if self.nesterov else buf
            grad = direction if self._all_momentum else torch.where(c["has_momentum"], direction, grad)
        p.addcmul_(grad, c["neg_lr"])

    def _adam(self, p: Tensor, grad: Tensor, state: dict[str, Tensor], c: _Columns) -> None:
        """Adam / AdamW (torch's ``_single_tensor_adam``): AdamW ``p *= 1 - lr wd``, Adam ``g += wd p``;
        ``m = lerp(m, g, 1 - beta1)``, ``v = beta2 v + (1 - beta2) g^2`` (amsgrad: ``v_max = max(v_max, v)`` used
        for v); ``p -= (lr / bc1) m / (sqrt(v) / sqrt(bc2) + eps)``."""
        if self._decay:
            if self.kind == "adamw":
                p.mul_(c["decay"])
            else:
                grad = torch.addcmul(grad, p, c["weight_decay"])
        if not state:
            state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            if self.amsgrad:
                state["max_exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        exp_avg.lerp_(grad, c["one_minus_beta1"])
        exp_avg_sq.mul_(c["beta2"]).addcmul_(c["one_minus_beta2"] * grad, grad)
        second = exp_avg_sq
        if self.amsgrad:
            second = torch.maximum(state["max_exp_avg_sq"], exp_avg_sq, out=state["max_exp_avg_sq"])
        denom = (second.sqrt() / c["bc2_sqrt"]).add_(c["eps"])
        p.addcdiv_(c["neg_step_size"] * exp_avg, denom)

    def _radam(self, p: Tensor, grad: Tensor, state: dict[str, Tensor], c: _Columns) -> None:
        """RAdam (torch's ``_single_tensor_radam``, L2 decay): ``g += wd p``; m and v as Adam;
        ``u = (m / bc1) lr``; ``p -= u (sqrt(bc2) / (sqrt(v) + eps)) rect`` where ``rho_t > 5``, else ``p -= u``."""
        if self._decay:
            grad = torch.addcmul(grad, p, c["weight_decay"])
        if not state:
            state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        exp_avg.lerp_(grad, c["one_minus_beta1"])
        exp_avg_sq.mul_(c["beta2"]).addcmul_(c["one_minus_beta2"] * grad, grad)
        unrectified = exp_avg / c["bc1"] * c["lr"]
        # torch: bc2**0.5 / (sqrt(v) + eps), which Tensor.__rtruediv__ computes as reciprocal(...) * bc2**0.5
        adaptive_lr = exp_avg_sq.sqrt().add_(c["eps"]).reciprocal_().mul_(c["bc2_sqrt"])
        rectified = unrectified * adaptive_lr * c["rect"]
        p.sub_(torch.where(c["rectify"], rectified, unrectified))

    def _rmsprop(self, p: Tensor, grad: Tensor, state: dict[str, Tensor], c: _Columns) -> None:
        """RMSprop (torch's ``_single_tensor_rmsprop``): ``g += wd p``; ``s = alpha s + (1 - alpha) g^2``;
        ``avg = sqrt(s - gbar^2) + eps`` with ``gbar = lerp(gbar, g, 1 - alpha)`` (centered) or ``sqrt(s) + eps``;
        with momentum mu > 0: ``buf = mu buf + g / avg``, ``p -= lr buf``; else ``p -= lr g / avg``."""
        if self._decay:
            grad = torch.addcmul(grad, p, c["weight_decay"])
        if not state:
            state["square_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            if self._any_momentum:
                state["momentum_buffer"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            if self.centered:
                state["grad_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        square_avg = state["square_avg"]
        square_avg.mul_(c["alpha"]).addcmul_(c["one_minus_alpha"] * grad, grad)
        if self.centered:
            grad_avg = state["grad_avg"].lerp_(grad, c["one_minus_alpha"])
            avg = square_avg.addcmul(grad_avg, grad_avg, value=-1).sqrt_()
        else:
            avg = square_avg.sqrt()
        avg = avg.add_(c["eps"])
        if not self._any_momentum:
            p.addcdiv_(c["neg_lr"] * grad, avg)
            return
        buf = state["momentum_buffer"]
        buf.mul_(c["momentum"]).addcdiv_(grad, avg)
        if self._all_momentum:
            p.addcmul_(buf, c["neg_lr"])
        else:
            with_momentum = torch.addcmul(p, buf, c["neg_lr"])
            p.copy_(torch.where(c["has_momentum"], with_momentum, torch.addcdiv(p, c["neg_lr"] * grad, avg)))

    def select(self, keep: Tensor) -> None:
        """Keep only the members at indices ``keep`` (long, sorted) in every hyperparameter and state tensor, e.g.
        to drop diverged members; the step counts stay. The next ``step`` takes the compacted parameters."""
        keep = keep.to(self.device)
        self.hyper = {name: value.index_select(0, keep) for name, value in self.hyper.items()}
        for state in self.state:
            for name, value in state.items():
                state[name] = value.index_select(0, keep.to(value.device))
        self._read_flags()

    def state_of(self, member: int) -> list[dict[str, Tensor]]:
        """Member ``member``'s state, one dict per parameter with torch's names (views, not copies)."""
        return [{name: value[member] for name, value in state.items()} for state in self.state]
