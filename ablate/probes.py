"""Probes: measurements of the mechanisms that explain why learning-rate warmup matters.

Every probe is a pure function of explicit inputs (a model, an optimizer, a loss closure, tensors). It returns
``dict[str, float]`` keyed by metric name (or, for the helpers, tensors), writes no file, draws from no global
random generator, and leaves the parameters, their gradients (``p.grad``) and the optimizer state exactly as
it found them: gradients are taken with ``torch.autograd.grad``, never ``.backward()``. Everything runs on the
tensors' own device (CPU or CUDA). ``theta`` are the parameters, ``g`` a gradient, ``t`` the optimizer's
step count; all norms are L2 over every coordinate named.

Probes (formula; metric names; cost in extra forward/backward passes per use):

- ``snapshot`` before ``optimizer.step()``, then ``layer_update_ratios``: ``||p_after - p_before|| /
  ||p_before||`` per parameter tensor; ``probe/update_ratio/<param name>``; no pass (a copy of the parameters).
- ``second_moment_stats``: quantiles over all coordinates of ``v_hat`` (below) and of the effective step
  ``eff_step = lr_t / (sqrt(v_hat) + eps)``; ``probe/v_hat/q10``, ``probe/v_hat/q50``, ``probe/v_hat/q90``,
  ``probe/eff_step/q10``, ``probe/eff_step/q50``, ``probe/eff_step/q90``; no pass (reads the state).
- ``reference_second_moment``: the true second moment ``v_ref = mean_b g_b**2`` over fresh batches ``b`` at
  the current parameters (tensors); one forward and one backward pass per batch.
- ``second_moment_error``: ``||v_hat - v_ref|| / ||v_ref||``, the direct test of "the adaptive optimizer needs
  time to estimate its statistics"; ``probe/v_hat_rel_error``; no pass.
- ``top_hessian_eigenvalue``: Lanczos on ``H`` or ``D^{-1/2} H D^{-1/2}``, the largest eigenvalue of its
  tridiagonal (a float: the top, largest algebraic, eigenvalue); one forward and one backward pass, then
  ``iters`` Hessian-vector products of about two backward passes each.
- ``sharpness``: the same for ``H`` and, given ``D``, for ``D^{-1/2} H D^{-1/2}``, with their stability
  thresholds; ``probe/sharpness``, ``probe/sharpness_limit``, ``probe/precond_sharpness``,
  ``probe/precond_sharpness_limit``; one forward and one backward pass, then ``iters`` Hessian-vector products
  (``2 * iters`` with ``D``).
- ``adam_preconditioner``: ``D = sqrt(v_hat) + eps`` per parameter (tensors); no pass.
- ``dead_relu_share``: the share of an ``nn.ReLU``'s units that are 0 for every example of ``x``;
  ``probe/dead_relu/<module name>`` and ``probe/dead_relu`` (all ReLU units); one forward pass (no grad).

Second moments, read from the real ``torch.optim`` state (``t = state["step"]``, ``lr``, ``eps``, betas from the
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
from torch import nn

UPDATE_RATIO = "probe/update_ratio"  # + "/<param name>": ||p_after - p_before|| / ||p_before||
V_HAT = "probe/v_hat"  # + "/q10", "/q50", "/q90": quantiles of the bias-corrected second moment
EFF_STEP = "probe/eff_step"  # + "/q10", "/q50", "/q90": quantiles of lr_t / (sqrt(v_hat) + eps)
V_HAT_REL_ERROR = "probe/v_hat_rel_error"  # ||v_hat - v_ref|| / ||v_ref||
SHARPNESS = "probe/sharpness"  # top Hessian eigenvalue (largest in magnitude)
SHARPNESS_LIMIT = "probe/sharpness_limit"  # 2 / lr: gradient descent's stability threshold
PRECOND_SHARPNESS = "probe/precond_sharpness"  # top eigenvalue of D^{-1/2} H D^{-1/2}
PRECOND_SHARPNESS_LIMIT = "probe/precond_sharpness_limit"  # (2 + 2 beta1) / ((1 - beta1) lr)
DEAD_RELU = "probe/dead_relu"  # share of all ReLU units dead on the batch; + "/<module name>" per module

QUANTILES: tuple[tuple[str, float], ...] = (("q10", 0.1), ("q50", 0.5), ("q90", 0.9))
MAX_QUANTILE_COORDS = 1_000_000  # above this many coordinates the quantiles use a strided subsample

LossFn = Callable[[], torch.Tensor]
BatchLossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def optimizer_params(optimizer: torch.optim.Optimizer) -> list[torch.Tensor]:
    """The optimizer's parameters in ``param_groups`` order: the order of every per-parameter list here."""
    return [p for group in optimizer.param_groups for p in group["params"]]


# --- update-to-weight ratios ---------------------------------------------------------------------------------


def snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    """Detached copies of the parameters by ``named_parameters`` name; take it just before ``optimizer.step()``."""
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def layer_update_ratios(named_before: dict[str, torch.Tensor], model: nn.Module) -> dict[str, float]:
    """``||p_after - p_before|| / ||p_before||`` for every parameter tensor, keyed ``probe/update_ratio/<name>``.

    ``named_before`` is ``snapshot(model)`` from before the update; ``model`` holds the parameters after it.
    A tensor that did not move has ratio 0; one that moved away from all zeros has ratio ``inf``.
    Cost: no forward or backward pass; one subtraction and two norms per tensor, one device sync.
    """
    named_after = dict(model.named_parameters())
    if named_after.keys() != named_before.keys():
        missing = sorted(named_after.keys() ^ named_before.keys())
        raise ValueError(f"named_before does not match the model's parameters: {missing} differ")
    if not named_after:
        return {}
    device = next(iter(named_after.values())).device
    with torch.no_grad():
        norms = [
            torch.stack(
                [
                    torch.linalg.vector_norm(p.detach() - named_before[name], dtype=torch.float64),
                    torch.linalg.vector_norm(named_before[name], dtype=torch.float64),
                ]
            ).to(device)
            for name, p in named_after.items()
        ]
        values = torch.stack(norms).tolist()
    out = {}
    for name, (change, before) in zip(named_after, values, strict=True):
        out[f"{UPDATE_RATIO}/{name}"] = 0.0 if change == 0.0 else (change / before if before > 0 else math.inf)
    return out


# --- the optimizer's second moment ---------------------------------------------------------------------------


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


# --- sharpness -------------------------------------------------------------------------------------------------


def _gradient_graph(loss: LossFn, params: list[torch.Tensor]) -> list[torch.Tensor | None]:
    """``grad loss`` with its graph kept, for Hessian-vector products (None where the loss ignores a param)."""
    with torch.enable_grad():
        return list(torch.autograd.grad(loss(), params, create_graph=True, allow_unused=True))


def _hvp(grads: list[torch.Tensor | None], params: list[torch.Tensor], vec: list[torch.Tensor]) -> list[torch.Tensor]:
    """``H vec`` by double backward through ``grads`` (whose graph is retained for the next product)."""
    pairs = [(g, v) for g, v in zip(grads, vec, strict=True) if g is not None and g.requires_grad]
    if not pairs:
        return [torch.zeros_like(v) for v in vec]
    hv = torch.autograd.grad(
        [g for g, _ in pairs], params, grad_outputs=[v for _, v in pairs], retain_graph=True, allow_unused=True
    )
    return [torch.zeros_like(v) if h is None else h.detach() for h, v in zip(hv, vec, strict=True)]


def _dot(a: list[torch.Tensor], b: list[torch.Tensor], device: torch.device) -> torch.Tensor:
    """``sum_i <a_i, b_i>`` in float64 on ``device``."""
    terms = [torch.dot(x.reshape(-1), y.reshape(-1)).double().to(device) for x, y in zip(a, b, strict=True)]
    return torch.stack(terms).sum()


def _lanczos(
    grads: list[torch.Tensor | None],
    params: list[torch.Tensor],
    iters: int,
    generator: torch.Generator | None,
    preconditioner: Sequence[torch.Tensor] | None,
) -> float:
    """Top eigenvalue of ``M = P H P`` (``P = D^{-1/2}`` or ``I``) after ``iters`` Lanczos steps (products ``M q``).

    Lanczos with full reorthogonalisation, in float64: from a random unit ``q_1``, ``w = M q_j - alpha_j q_j -
    beta_{j-1} q_{j-1}`` with ``alpha_j = q_j^T M q_j``, ``w`` re-orthogonalised against every earlier ``q``
    (twice), ``beta_j = ||w||``, ``q_{j+1} = w / beta_j``; the answer is the largest eigenvalue of the
    tridiagonal ``T_k`` (``alpha`` on the diagonal, ``beta`` beside it), which approaches ``lambda_max(M)`` from
    below, far faster than power iteration (whose error falls like ``(lambda_2 / lambda_1)^k``), and which finds
    the largest *algebraic* eigenvalue even when a negative one is larger in size. Stops early when the Krylov
    space is exhausted (``beta`` ~ 0: then ``T`` holds eigenvalues of ``M`` exactly).
    """
    if iters < 1:
        raise ValueError(f"iters must be >= 1, got {iters}")
    scale: list[torch.Tensor] | None = None
    if preconditioner is not None:
        if len(preconditioner) != len(params):
            raise ValueError(f"preconditioner has {len(preconditioner)} tensors for {len(params)} params")
        for i, (d, p) in enumerate(zip(preconditioner, params, strict=True)):
            if d.shape != p.shape:
                raise ValueError(f"preconditioner[{i}] has shape {tuple(d.shape)}, param {i} {tuple(p.shape)}")
        scale = [d.detach().to(p).rsqrt() for d, p in zip(preconditioner, params, strict=True)]
    gen = torch.Generator().manual_seed(0) if generator is None else generator
    device = params[0].device
    sizes = [p.numel() for p in params]

    def apply(q: torch.Tensor) -> torch.Tensor:  # M q on a flat float64 vector
        vec = [part.view_as(p).to(p.dtype) for part, p in zip(torch.split(q, sizes), params, strict=True)]
        if scale is None:
            product = _hvp(grads, params, vec)
        else:
            scaled = [s * v for s, v in zip(scale, vec, strict=True)]
            product = [s * h for s, h in zip(scale, _hvp(grads, params, scaled), strict=True)]
        return torch.cat([h.reshape(-1).double() for h in product])

    start = [torch.randn(p.shape, generator=gen, dtype=p.dtype, device=gen.device).to(device) for p in params]
    q = torch.cat([v.reshape(-1).double() for v in start])
    q = q / q.norm()
    basis: list[torch.Tensor] = []
    alphas: list[float] = []
    betas: list[float] = []
    with torch.no_grad():
        for _ in range(iters):
            basis.append(q)
            w = apply(q)
            alpha = float(torch.dot(q, w))
            alphas.append(alpha)
            stacked = torch.stack(basis)
            for _ in range(2):  # full re-orthogonalisation (covers the three-term recurrence too)
                w = w - stacked.T @ (stacked @ w)
            beta = float(w.norm())
            if beta <= 1e-10 * max(1.0, abs(alpha)) or len(basis) == iters:
                break
            betas.append(beta)
            q = w / beta
    k = len(alphas)
    tridiagonal = torch.diag(torch.tensor(alphas, dtype=torch.float64))
    if k > 1:
        off = torch.tensor(betas[: k - 1], dtype=torch.float64)
        tridiagonal += torch.diag(off, 1) + torch.diag(off, -1)
    return float(torch.linalg.eigvalsh(tridiagonal)[-1])


def top_hessian_eigenvalue(
    loss: LossFn,
    params: list[torch.Tensor],
    iters: int = 20,
    generator: torch.Generator | None = None,
    preconditioner: list[torch.Tensor] | None = None,
) -> float:
    """The top (largest algebraic) Hessian eigenvalue of ``loss()`` with respect to ``params``, by Lanczos.

    ``iters`` Lanczos steps (``_lanczos``) from a random unit vector ``q_1 ~ N(0, I)`` drawn from ``generator``
    (None: a fresh CPU generator seeded 0, so the result is deterministic and the global RNG is never drawn
    from), on ``M = H`` or, given ``preconditioner = D`` (one positive tensor shaped like each param, e.g.
    ``adam_preconditioner``), ``M = D^{-1/2} H D^{-1/2}`` (same eigenvalues as ``D^{-1} H``: the
    preconditioned sharpness of adaptive methods, Cohen et al. 2022). ``H v`` is a double backward through
    ``torch.autograd.grad(loss(), params, create_graph=True)``. The estimate approaches the top eigenvalue
    from below; 20 steps give it to about 1e-4 relative on the built-in models at init
    (``tests/test_probes.py`` checks it against an exact eigen-decomposition).
    Cost: one forward and one backward pass, then ``iters`` Hessian-vector products of about two backward
    passes each; ``p.grad`` is not touched.
    """
    params = list(params)
    return _lanczos(_gradient_graph(loss, params), params, iters, generator, preconditioner)


def sharpness(
    loss: LossFn,
    params: list[torch.Tensor],
    lr: float,
    iters: int = 20,
    generator: torch.Generator | None = None,
    preconditioner: list[torch.Tensor] | None = None,
    beta1: float = 0.0,
) -> dict[str, float]:
    """Sharpness and its stability threshold at rate ``lr``; with ``preconditioner``, the preconditioned ones.

    - ``probe/sharpness``: ``top_hessian_eigenvalue(loss, params)``. ``probe/sharpness_limit = 2 / lr``:
      gradient descent at rate ``lr`` is unstable along directions of curvature above ``2 / lr`` (on a
      quadratic), and full-batch training tends to hover at that edge (Cohen et al. 2021).
    - ``probe/precond_sharpness`` (given ``preconditioner = D``): the top eigenvalue of ``D^{-1/2} H
      D^{-1/2}``, and ``probe/precond_sharpness_limit = (2 + 2 beta1) / ((1 - beta1) lr)``: the threshold of
      preconditioned updates with EMA momentum ``m = beta1 m + (1 - beta1) g``, ``theta -= lr D^{-1} m``
      (Cohen et al. 2022, "Adaptive gradient methods at the edge of stability"). It is ``2 / lr`` for
      ``beta1 = 0`` (RMSprop without momentum, Adam with ``beta1 = 0``) and ``38 / lr`` for Adam's default
      ``beta1 = 0.9``. For torch's RMSprop with heavy-ball momentum ``mu`` the threshold is ``(2 + 2 mu) /
      lr``: pass ``beta1 = mu`` and ``lr / (1 - mu)``. For rectified RAdam pass ``lr * r_t``.

    Both Lanczos runs share one gradient graph and draw their start vectors in turn from ``generator``.
    Cost: one forward and one backward pass, then ``iters`` Hessian-vector products (``2 * iters`` with a
    preconditioner) of about two backward passes each; ``p.grad`` is not touched.
    """
    params = list(params)
    gen = torch.Generator().manual_seed(0) if generator is None else generator
    grads = _gradient_graph(loss, params)
    out = {SHARPNESS: _lanczos(grads, params, iters, gen, None), SHARPNESS_LIMIT: 2.0 / lr}
    if preconditioner is not None:
        out[PRECOND_SHARPNESS] = _lanczos(grads, params, iters, gen, preconditioner)
        out[PRECOND_SHARPNESS_LIMIT] = (2.0 + 2.0 * beta1) / ((1.0 - beta1) * lr)
    return out


# --- dead units --------------------------------------------------------------------------------------------------


def dead_relu_share(model: nn.Module, x: torch.Tensor) -> dict[str, float]:
    """Share of each ``nn.ReLU`` module's units that output 0 for every example of the batch ``x``.

    A unit is one coordinate of the module's output apart from the leading batch dimension. Keys
    ``probe/dead_relu/<module name>`` (``named_modules`` name) and ``probe/dead_relu`` (dead units over all
    ReLU units). A module applied twice counts both applications' units; one not applied, and functional
    ``F.relu``, are not seen; ``{}`` when the model applies no ``nn.ReLU``. The forward runs under
    ``no_grad`` in the model's current mode (a BatchNorm in train mode would update its running statistics);
    the hooks are removed afterwards. Cost: one forward pass.
    """
    if len(x) == 0:
        raise ValueError("dead_relu_share needs a non-empty batch")
    counts: dict[str, list[torch.Tensor]] = {}

    def hook_for(name: str) -> Callable[[nn.Module, object, torch.Tensor], None]:
        def hook(module: nn.Module, inputs: object, output: torch.Tensor) -> None:
            dead = (output.reshape(output.shape[0], -1) == 0).all(dim=0)
            counts.setdefault(name, []).append(torch.stack([dead.sum(), torch.tensor(dead.numel()).to(dead.device)]))

        return hook

    handles = [m.register_forward_hook(hook_for(name)) for name, m in model.named_modules() if isinstance(m, nn.ReLU)]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for handle in handles:
            handle.remove()
    if not counts:
        return {}
    per_module = {name: torch.stack(calls).sum(dim=0) for name, calls in counts.items()}
    values = torch.stack([c.to(x.device) for c in per_module.values()]).tolist()
    out = {f"{DEAD_RELU}/{name}": dead / units for name, (dead, units) in zip(per_module, values, strict=True)}
    out[DEAD_RELU] = sum(dead for dead, _ in values) / sum(units for _, units in values)
    return out
