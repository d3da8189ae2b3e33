"""Second moments, read from the real ``torch.optim`` state (``t = state["step"]``, ``lr``, ``eps``, betas from the
parameter's group):

- Adam, AdamW: ``v_hat = exp_avg_sq / (1 - beta2**t)``; the update is ``lr * m_hat / (sqrt(v_hat) + eps)``
  (eps after the square root, as torch adds it), so ``lr_t = lr``. With ``amsgrad`` the update divides by
  ``sqrt(max_exp_avg_sq / (1 - beta2**t)) + eps`` instead, and ``eff_step`` uses that.
- RAdam: the same ``v_hat``. With ``rho_inf = 2/(1 - beta2) - 1`` and ``rho_t = rho_inf - 2 t beta2**t /
  (1 - beta2**t)``: while ``rho_t <= 5`` (the first 5 steps at ``beta2 = 0.999``) torch's update is
  ``lr * m_hat`` with no division, so ``eff_step = lr`` everywhere (RAdam's built-in warmup); afterwards it is
  ``lr * r_t * m_hat / (sqrt(v_hat) + eps / sqrt(1 - beta2**t))`` with the rectification ``r_t = sqrt((rho_t -
  4)(rho_t - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_t))``, so ``lr_t = lr * r_t``.
- RMSprop: ``v_hat = square_avg`` (no bias correction), or ``square_avg - grad_avg**2`` when ``centered``;
  the update is ``lr * g / (sqrt(v_hat) + eps)`` (into the momentum buffer when ``momentum > 0``).
- SGD keeps no second moment: the second-moment probes return ``{}`` (``adam_preconditioner``: ``None``), as
  they do before the first step. Other optimizers raise ``TypeError``.

``eff_step`` is the per-coordinate multiplier on ``m_hat`` (Adam, RAdam) or on ``g`` (RMSprop) in the update the
optimizer last took, at the rate now in its param group. Parameter order is ``optimizer.param_groups`` order
throughout (``optimizer_params``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from ablate.run.probes.update_ratio import optimizer_params

V_HAT = "probe/v_hat"  # + "/q10", "/q50", "/q90": quantiles of the bias-corrected second moment
EFF_STEP = "probe/eff_step"  # + "/q10", "/q50", "/q90": quantiles of lr_t / (sqrt(v_hat) + eps)
V_HAT_REL_ERROR = "probe/v_hat_rel_error"  # ||v_hat - v_ref|| / ||v_ref||
QUANTILES: tuple[tuple[str, float], ...] = (("q10", 0.1), ("q50", 0.5), ("q90", 0.9))
MAX_QUANTILE_COORDS = 1_000_000  # above this many coordinates the quantiles use a strided subsample
BatchLossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class _SecondMoment:
    """One parameter's second-moment state as the optimizer uses it (tensors are read, never written).

    ``v_hat = v * scale``; the update divides by ``sqrt(d * scale) + d_eps`` (not at all when ``d`` is None:
    RAdam before rectification) and multiplies by ``lr`` (RAdam: ``lr * r_t``).
    """

    v: torch.Tensor
    d: torch.Tensor | None
    scale: float
    d_eps: float
    lr: float

    def v_hat(self, start: int = 0, stride: int = 1) -> torch.Tensor:
        return self.v.reshape(-1)[start::stride] * self.scale

    def denominator(self, start: int = 0, stride: int = 1) -> torch.Tensor:
        if self.d is None:
            return torch.ones_like(self.v.reshape(-1)[start::stride])
        return (self.d.reshape(-1)[start::stride] * self.scale).sqrt() + self.d_eps

    def eff_step(self, start: int = 0, stride: int = 1) -> torch.Tensor:
        return self.lr / self.denominator(start, stride)


READABLE = (torch.optim.SGD, torch.optim.Adam, torch.optim.AdamW, torch.optim.RAdam, torch.optim.RMSprop)


def unreadable(optimizer: torch.optim.Optimizer) -> str | None:
    """Why the second-moment probes cannot read ``optimizer`` (None when they can)."""
    if isinstance(optimizer, READABLE):
        return None
    return (
        f"{type(optimizer).__module__}.{type(optimizer).__name__} keeps no state these probes can read as a second "
        "moment (they read Adam, AdamW, RAdam and RMSprop; SGD has none)"
    )


def _read_second_moments(optimizer: torch.optim.Optimizer) -> list[_SecondMoment | None] | None:
    """Per parameter (``param_groups`` order) its second moment, None where it has no state yet; None for SGD."""
    if isinstance(optimizer, torch.optim.SGD):
        return None
    kinds = (torch.optim.Adam, torch.optim.AdamW, torch.optim.RAdam, torch.optim.RMSprop)
    if not isinstance(optimizer, kinds):
        raise TypeError(
            f"probes read the second moment of Adam, AdamW, RAdam and RMSprop (SGD has none), not {optimizer!r}"
        )
    out: list[_SecondMoment | None] = []
    for group in optimizer.param_groups:
        lr, eps = float(group["lr"]), float(group["eps"])
        for p in group["params"]:
            state = optimizer.state.get(p, {})
            if isinstance(optimizer, torch.optim.RMSprop):
                if "square_avg" not in state:
                    out.append(None)
                    continue
                v = state["square_avg"]
                if group["centered"]:
                    v = v.addcmul(state["grad_avg"], state["grad_avg"], value=-1)
                out.append(_SecondMoment(v=v, d=v, scale=1.0, d_eps=eps, lr=lr))
                continue
            if "exp_avg_sq" not in state:
                out.append(None)
                continue
            beta2 = float(group["betas"][1])
            step = float(state["step"])
            bias_correction2 = 1.0 - beta2**step
            v = state["exp_avg_sq"]
            if isinstance(optimizer, torch.optim.RAdam):
                rho_inf = 2.0 / (1.0 - beta2) - 1.0
                rho_t = rho_inf - 2.0 * step * beta2**step / bias_correction2
                if rho_t > 5.0:
                    rect = math.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t))
                    d_eps = eps / math.sqrt(bias_correction2)
                    out.append(_SecondMoment(v=v, d=v, scale=1.0 / bias_correction2, d_eps=d_eps, lr=lr * rect))
                else:
                    out.append(_SecondMoment(v=v, d=None, scale=1.0 / bias_correction2, d_eps=eps, lr=lr))
                continue
            d = state["max_exp_avg_sq"] if group.get("amsgrad", False) else v
            out.append(_SecondMoment(v=v, d=d, scale=1.0 / bias_correction2, d_eps=eps, lr=lr))
    return out


def second_moment_stats(optimizer: torch.optim.Optimizer, max_coords: int = MAX_QUANTILE_COORDS) -> dict[str, float]:
    """Quantiles over all coordinates of ``v_hat`` and of ``eff_step = lr_t / (sqrt(v_hat) + eps)``.

    Read from the optimizer's real state (the module docstring gives ``v_hat`` and ``eff_step`` for Adam,
    AdamW, RAdam and RMSprop). Keys ``probe/v_hat/q10|q50|q90`` and ``probe/eff_step/q10|q50|q90``
    (``torch.quantile``, linear interpolation). With more than ``max_coords`` coordinates the quantiles are
    of the deterministic strided subsample ``flat[::ceil(n / max_coords)]`` of all coordinates concatenated
    in ``param_groups`` order. Parameters without state yet are left out; ``{}`` for SGD and before the first
    step. Cost: no forward or backward pass.
    """
    moments = _read_second_moments(optimizer)
    present = [m for m in moments or [] if m is not None]
    if not present:
        return {}
    n_coords = sum(m.v.numel() for m in present)
    stride = max(1, math.ceil(n_coords / max_coords))
    v_parts, eff_parts = [], []
    offset = 0
    device = present[0].v.device
    with torch.no_grad():
        for m in present:
            start = (-offset) % stride  # the positions of the global flat[::stride] inside this tensor
            v_parts.append(m.v_hat(start, stride).to(device))
            eff_parts.append(m.eff_step(start, stride).to(device))
            offset += m.v.numel()
        out = {}
        for name, parts in ((V_HAT, v_parts), (EFF_STEP, eff_parts)):
            flat = torch.cat(parts)
            flat = flat.to(torch.promote_types(flat.dtype, torch.float32))
            qs = torch.quantile(flat, torch.tensor([q for _, q in QUANTILES], dtype=flat.dtype, device=device))
            out.update({f"{name}/{label}": value for (label, _), value in zip(QUANTILES, qs.tolist(), strict=True)})
    return out


def reference_second_moment(
    loss_of: BatchLossFn, params: Sequence[torch.Tensor], batches: Sequence[tuple[torch.Tensor, torch.Tensor]]
) -> list[torch.Tensor]:
    """The true second moment at the current parameters: ``v_ref = mean_b g_b**2`` per coordinate.

    ``loss_of(x, y)`` returns the scalar loss of one batch through the model (a closure over it, run in the
    model's current train/eval mode); ``g_b`` is its gradient with respect to ``params`` on batch ``b`` of
    ``batches`` (fresh batches, each weighted equally). Pass ``optimizer_params(optimizer)`` as ``params`` to
    compare with the optimizer (``second_moment_error``); every one must require grad. A parameter the loss
    does not use gets zeros. Returns one tensor per parameter, shaped like it. Cost: one forward and one
    backward pass per batch (``torch.autograd.grad``: ``p.grad`` is not touched).
    """
    if not batches:
        raise ValueError("reference_second_moment needs at least one batch")
    params = list(params)
    sums = [torch.zeros_like(p, requires_grad=False) for p in params]
    with torch.enable_grad():
        for x, y in batches:
            grads = torch.autograd.grad(loss_of(x, y), params, allow_unused=True)
            with torch.no_grad():
                for total, g in zip(sums, grads, strict=True):
                    if g is not None:
                        total.addcmul_(g, g)
    return [total / len(batches) for total in sums]


def second_moment_error(optimizer: torch.optim.Optimizer, v_ref: Sequence[torch.Tensor]) -> dict[str, float]:
    """``||v_hat - v_ref|| / ||v_ref||`` over all coordinates: does the optimizer's estimate match the truth?

    ``v_hat`` is the bias-corrected ``exp_avg_sq`` (Adam, AdamW, RAdam) or ``square_avg`` (RMSprop; minus
    ``grad_avg**2`` when centered); ``v_ref`` comes from ``reference_second_moment`` over the params
    ``optimizer_params(optimizer)``, in that order. ``v_hat`` averages gradients at past parameters (and,
    with L2 ``weight_decay``, includes ``wd * theta``), ``v_ref`` is at the current ones: early in training
    and right after a large step the two differ, which is what warmup is said to wait out. A parameter with
    no state yet counts as ``v_hat = 0``. Key ``probe/v_hat_rel_error`` (0 when both are 0, ``inf`` when only
    ``v_ref`` is); ``{}`` for SGD and before the first step. Cost: no forward or backward pass.
    """
    moments = _read_second_moments(optimizer)
    if moments is None or all(m is None for m in moments):
        return {}
    if len(v_ref) != len(moments):
        raise ValueError(f"v_ref has {len(v_ref)} tensors, the optimizer {len(moments)} params")
    params = optimizer_params(optimizer)
    device = params[0].device
    diff_sq = torch.zeros((), dtype=torch.float64, device=device)
    ref_sq = torch.zeros((), dtype=torch.float64, device=device)
    with torch.no_grad():
        for i, (m, ref, p) in enumerate(zip(moments, v_ref, params, strict=True)):
            if ref.shape != p.shape:
                raise ValueError(f"v_ref[{i}] has shape {tuple(ref.shape)}, param {i} {tuple(p.shape)}")
            ref_flat = ref.reshape(-1).to(p.device)
            diff = ref_flat if m is None else m.v_hat() - ref_flat
            diff_sq += torch.linalg.vector_norm(diff, dtype=torch.float64).to(device) ** 2
            ref_sq += torch.linalg.vector_norm(ref_flat, dtype=torch.float64).to(device) ** 2
        num, den = diff_sq.sqrt().item(), ref_sq.sqrt().item()
    return {V_HAT_REL_ERROR: 0.0 if num == 0.0 else (num / den if den > 0 else math.inf)}


def adam_preconditioner(optimizer: torch.optim.Optimizer) -> list[torch.Tensor] | None:
    """``D = sqrt(v_hat) + eps`` per parameter (``param_groups`` order): what the optimizer divides by.

    Exactly torch's denominator: Adam/AdamW ``sqrt(exp_avg_sq / (1 - beta2**t)) + eps`` (``max_exp_avg_sq``
    with amsgrad), RMSprop ``sqrt(square_avg) + eps`` (centered: minus ``grad_avg**2``), RAdam ``sqrt(v_hat) +
    eps / sqrt(1 - beta2**t)`` once rectified and ones before (its step then also carries ``r_t``; see the
    module docstring). New tensors, not views of the state. ``None`` for SGD and before the first step;
    ``ValueError`` when only some parameters have state (pass only parameters the optimizer updates).
    Cost: no forward or backward pass.
    """
    moments = _read_second_moments(optimizer)
    if moments is None or all(m is None for m in moments):
        return None
    missing = [i for i, m in enumerate(moments) if m is None]
    if missing:
        raise ValueError(f"params {missing} have no optimizer state (never had a gradient?): no preconditioner")
    with torch.no_grad():
        return [m.denominator().reshape(m.v.shape) for m in moments if m is not None]
