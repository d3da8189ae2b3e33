"""Sharpness: the top eigenvalue of the training loss's Hessian ``H`` (and of the preconditioned
``D^{-1/2} H D^{-1/2}``) by Lanczos on Hessian-vector products, with the stability thresholds it is compared
against. See the package docstring for the probes' contract."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

SHARPNESS = "probe/sharpness"  # top Hessian eigenvalue (largest in magnitude)
SHARPNESS_LIMIT = "probe/sharpness_limit"  # 2 / lr: gradient descent's stability threshold
PRECOND_SHARPNESS = "probe/precond_sharpness"  # top eigenvalue of D^{-1/2} H D^{-1/2}
PRECOND_SHARPNESS_LIMIT = "probe/precond_sharpness_limit"  # (2 + 2 beta1) / ((1 - beta1) lr)
LossFn = Callable[[], torch.Tensor]


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
