"""Probes against exact or closed-form values: quadratics with known spectra, optimizers' known first steps,
the step torch actually takes, hand-built dead units; and that no probe changes what it measures."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ablate.run.models.build import MLP
from ablate.run.probes import dead_relu, second_moment, sharpness, update_ratio

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
LR = 1e-2
EPS = 1e-8


def hand_quantile(values: list[float], q: float) -> float:
    """Linear interpolation between order statistics at position ``q (n - 1)`` (torch.quantile's default)."""
    s = sorted(values)
    pos = q * (len(s) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (pos - lo) * (s[hi] - s[lo])


def flat(tensors: list[torch.Tensor]) -> list[float]:
    return torch.cat([t.detach().reshape(-1).cpu() for t in tensors]).tolist()


def linear_with_grad(device: str, seed: int = 0) -> tuple[nn.Linear, list[torch.Tensor]]:
    """``Linear(4, 3)`` in float64 (15 coordinates, an odd count) with a hand-set gradient, every |g| >= 0.1."""
    torch.manual_seed(seed)
    model = nn.Linear(4, 3).double().to(device)
    gen = torch.Generator().manual_seed(seed + 1)
    grads = []
    for p in model.parameters():
        g = torch.randn(p.shape, generator=gen, dtype=torch.float64)
        g = torch.sign(g) * (0.1 + g.abs())
        grads.append(g.to(device))
        p.grad = g.clone().to(device)
    return model, grads


def quadratic(device: str) -> tuple[torch.Tensor, list[torch.Tensor], Callable[[], torch.Tensor]]:
    """``0.5 w^T A w`` with A's eigenvalues 5, 2, 0.5 in a seeded orthonormal basis; ``w = (u, v)`` split over two
    params, plus a third param the loss ignores."""
    gen = torch.Generator().manual_seed(3)
    q, _ = torch.linalg.qr(torch.randn(3, 3, generator=gen, dtype=torch.float64))
    a = (q @ torch.diag(torch.tensor([5.0, 2.0, 0.5], dtype=torch.float64)) @ q.T).to(device)
    u = torch.randn(1, generator=gen, dtype=torch.float64).to(device).requires_grad_()
    v = torch.randn(2, generator=gen, dtype=torch.float64).to(device).requires_grad_()
    unused = torch.zeros(4, dtype=torch.float64, device=device, requires_grad=True)

    def loss() -> torch.Tensor:
        w = torch.cat([u, v])
        return 0.5 * w @ a @ w

    return a, [u, v, unused], loss


# --- sharpness ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("device", DEVICES)
def test_sharpness_of_a_quadratic_is_its_top_eigenvalue(device: str) -> None:
    _, params, loss = quadratic(device)
    top = sharpness.top_hessian_eigenvalue(loss, params, iters=30, generator=torch.Generator().manual_seed(7))
    assert top == pytest.approx(5.0, abs=1e-4)
    assert all(p.grad is None for p in params)


@pytest.mark.parametrize("device", DEVICES)
def test_preconditioned_sharpness_is_the_top_eigenvalue_of_d_a_d(device: str) -> None:
    a, params, loss = quadratic(device)
    d = [torch.tensor([0.3]), torch.tensor([2.0, 1.1]), torch.ones(4)]
    d = [x.to(device=device, dtype=torch.float64) for x in d]
    d_diag = torch.cat(d[:2])
    expected = torch.linalg.eigvalsh(a / torch.sqrt(d_diag)[:, None] / torch.sqrt(d_diag)[None, :]).max().item()
    assert abs(expected - 5.0) > 1.0  # the preconditioner matters here
    got = sharpness.top_hessian_eigenvalue(loss, params, iters=200, preconditioner=d)
    assert got == pytest.approx(expected, rel=1e-8)

    out = sharpness.sharpness(loss, params, lr=0.1, iters=200, preconditioner=d, beta1=0.9)
    assert set(out) == {
        sharpness.SHARPNESS,
        sharpness.SHARPNESS_LIMIT,
        sharpness.PRECOND_SHARPNESS,
        sharpness.PRECOND_SHARPNESS_LIMIT,
    }
    assert out[sharpness.SHARPNESS] == pytest.approx(5.0, abs=1e-4)
    assert out[sharpness.PRECOND_SHARPNESS] == pytest.approx(expected, rel=1e-8)
    assert out[sharpness.SHARPNESS_LIMIT] == pytest.approx(20.0, rel=1e-12)  # 2 / lr
    assert out[sharpness.PRECOND_SHARPNESS_LIMIT] == pytest.approx(380.0, rel=1e-12)  # 38 / lr at beta1 = 0.9
    plain = sharpness.sharpness(loss, params, lr=0.1)
    assert set(plain) == {sharpness.SHARPNESS, sharpness.SHARPNESS_LIMIT}


def test_lanczos_finds_the_top_eigenvalue_even_beside_a_larger_negative_one() -> None:
    """Power iteration (used before) returned -6 here, the eigenvalue largest in magnitude; the top one is 5."""
    gen = torch.Generator().manual_seed(3)
    q, _ = torch.linalg.qr(torch.randn(3, 3, generator=gen, dtype=torch.float64))
    a = q @ torch.diag(torch.tensor([-6.0, 5.0, 1.0], dtype=torch.float64)) @ q.T
    w = torch.randn(3, generator=gen, dtype=torch.float64, requires_grad=True)
    assert sharpness.top_hessian_eigenvalue(lambda: 0.5 * w @ a @ w, [w], iters=3) == pytest.approx(5.0, rel=1e-9)


@pytest.mark.parametrize(("task", "init_scale"), [("regression", 1.0), ("regression", 2.0), ("classification", None)])
def test_sharpness_at_init_matches_an_exact_eigen_decomposition(task: str, init_scale: float | None) -> None:
    """A tiny MLP at init: 20 Lanczos steps (the default sharpness_iters) against ``eigvalsh`` of the full Hessian."""
    from ablate.run import objective

    torch.manual_seed(0)
    x = torch.randn(64, 4)
    y = torch.randn(64) if task == "regression" else torch.randint(0, 3, (64,))
    model = MLP(4, 1 if task == "regression" else 3, [6, 6], "tanh", init_scale)
    params = list(model.parameters())
    names = [name for name, _ in model.named_parameters()]
    sizes = [p.numel() for p in params]
    flat = torch.cat([p.detach().reshape(-1) for p in params]).double()

    def loss_of(vector: torch.Tensor) -> torch.Tensor:
        tensors = [v.view_as(p) for v, p in zip(torch.split(vector, sizes), params, strict=True)]
        out = torch.func.functional_call(model.double(), dict(zip(names, tensors, strict=True)), (x.double(),))
        return objective.loss(task, out, y.double() if task == "regression" else y)

    exact = float(torch.linalg.eigvalsh(torch.autograd.functional.hessian(loss_of, flat))[-1])
    model.float()
    lanczos = sharpness.top_hessian_eigenvalue(
        lambda: objective.loss(task, model(x), y), list(model.parameters()), iters=20
    )
    assert lanczos == pytest.approx(exact, rel=1e-4)
    assert lanczos <= exact * (1 + 1e-5)  # Lanczos approaches the top eigenvalue from below


def test_sharpness_is_deterministic_and_leaves_the_global_rng_alone() -> None:
    _, params, loss = quadratic("cpu")
    rng = torch.get_rng_state()
    first = sharpness.top_hessian_eigenvalue(loss, params, iters=3)
    assert torch.equal(torch.get_rng_state(), rng)
    assert sharpness.top_hessian_eigenvalue(loss, params, iters=3) == first
    seeded = [
        sharpness.top_hessian_eigenvalue(loss, params, iters=3, generator=torch.Generator().manual_seed(5))
        for _ in "ab"
    ]
    assert seeded[0] == seeded[1]
    with pytest.raises(ValueError, match="iters"):
        sharpness.top_hessian_eigenvalue(loss, params, iters=0)


# --- second moments: known first steps ------------------------------------------------------------------------


@pytest.mark.parametrize("device", DEVICES)
def test_adam_first_step_moves_every_coordinate_by_lr_and_v_hat_is_g_squared(device: str) -> None:
    model, grads = linear_with_grad(device)
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    before = update_ratio.snapshot(model)
    opt.step()
    for (name, p), b in zip(model.named_parameters(), before.values(), strict=True):
        assert torch.allclose((p.detach() - b).abs(), torch.full_like(b, LR), rtol=0, atol=1e-9), name

    ratios = update_ratio.layer_update_ratios(before, model)
    assert set(ratios) == {"probe/update_ratio/weight", "probe/update_ratio/bias"}
    for name in ("weight", "bias"):
        n = before[name].numel()
        closed_form = LR * math.sqrt(n) / torch.linalg.vector_norm(before[name]).item()
        assert ratios[f"probe/update_ratio/{name}"] == pytest.approx(closed_form, rel=1e-7)

    stats = second_moment.second_moment_stats(opt)
    g = flat(grads)
    g2 = [x * x for x in g]
    assert len(g2) == 15
    assert stats["probe/v_hat/q50"] == pytest.approx(sorted(g2)[7], rel=1e-12)  # the median by hand
    for label, q in second_moment.QUANTILES:
        assert stats[f"probe/v_hat/{label}"] == pytest.approx(hand_quantile(g2, q), rel=1e-12)
        expected = hand_quantile([LR / (abs(x) + EPS) for x in g], q)
        assert stats[f"probe/eff_step/{label}"] == pytest.approx(expected, rel=1e-12)
        assert stats[f"probe/eff_step/{label}"] == pytest.approx(hand_quantile([LR / abs(x) for x in g], q), rel=1e-6)


@pytest.mark.parametrize("centered", [False, True])
def test_rmsprop_first_step_square_avg_is_a_hundredth_of_g_squared(centered: bool) -> None:
    model, grads = linear_with_grad("cpu")
    opt = torch.optim.RMSprop(model.parameters(), lr=LR, alpha=0.99, centered=centered)
    opt.step()
    g = flat(grads)
    # square_avg = 0.01 g^2; centered subtracts grad_avg^2 = (0.01 g)^2
    factor = 0.01 - 0.0001 if centered else 0.01
    stats = second_moment.second_moment_stats(opt)
    for label, q in second_moment.QUANTILES:
        assert stats[f"probe/v_hat/{label}"] == pytest.approx(hand_quantile([factor * x * x for x in g], q), rel=1e-9)
        eff = [LR / (math.sqrt(factor) * abs(x) + EPS) for x in g]
        assert stats[f"probe/eff_step/{label}"] == pytest.approx(hand_quantile(eff, q), rel=1e-9)


def test_radam_first_steps_are_unadapted() -> None:
    model, grads = linear_with_grad("cpu")
    opt = torch.optim.RAdam(model.parameters(), lr=LR)
    opt.step()
    stats = second_moment.second_moment_stats(opt)
    g2 = [x * x for x in flat(grads)]
    for label, q in second_moment.QUANTILES:
        assert stats[f"probe/v_hat/{label}"] == pytest.approx(hand_quantile(g2, q), rel=1e-12)
        assert stats[f"probe/eff_step/{label}"] == LR  # rho_1 = 1 <= 5: the update is lr * m_hat


OPTIMIZERS: dict[str, Callable[[list[torch.Tensor]], torch.optim.Optimizer]] = {
    "adam": lambda ps: torch.optim.Adam(ps, lr=LR),
    "adam_eps": lambda ps: torch.optim.Adam(ps, lr=LR, eps=0.05),  # eps comparable to |g|: after the sqrt
    "adamw": lambda ps: torch.optim.AdamW(ps, lr=LR, weight_decay=0.0),
    "amsgrad": lambda ps: torch.optim.Adam(ps, lr=LR, amsgrad=True),
    "radam": lambda ps: torch.optim.RAdam(ps, lr=LR, eps=0.05),
    "rmsprop": lambda ps: torch.optim.RMSprop(ps, lr=LR, eps=0.05),
    "rmsprop_centered": lambda ps: torch.optim.RMSprop(ps, lr=LR, centered=True),
}


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("steps", [1, 8])  # RAdam at beta2 = 0.999 rectifies from step 6 on
@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_eff_step_is_the_step_torch_takes(name: str, steps: int, device: str) -> None:
    """With a constant gradient ``m_hat = g``, so torch's last update is ``eff_step * g`` coordinate by coordinate."""
    model, grads = linear_with_grad(device)
    opt = OPTIMIZERS[name](list(model.parameters()))
    for _ in range(steps - 1):
        opt.step()
    before = update_ratio.snapshot(model)
    opt.step()
    moved = [
        (p.detach() - b).abs() / g.abs() for p, b, g in zip(model.parameters(), before.values(), grads, strict=True)
    ]
    stats = second_moment.second_moment_stats(opt)
    for label, q in second_moment.QUANTILES:
        assert stats[f"probe/eff_step/{label}"] == pytest.approx(hand_quantile(flat(moved), q), rel=1e-7)
    denominators = second_moment.adam_preconditioner(opt)
    assert denominators is not None
    if name == "radam" and steps == 1:
        assert all(torch.equal(d, torch.ones_like(d)) for d in denominators)
    elif name != "radam":  # the update is lr * m_hat / D
        for d, m in zip(denominators, moved, strict=True):
            assert d.shape == m.shape
            assert torch.allclose(LR / d, m, rtol=1e-7, atol=0)


@pytest.mark.parametrize("steps", [3, 8])
@pytest.mark.parametrize("name", ["adam", "adamw", "amsgrad", "radam"])
def test_eff_step_is_the_step_torch_takes_after_the_gradient_vanishes(name: str, steps: int) -> None:
    """One gradient ``g``, then zeros: ``v`` decays (so amsgrad's maximum differs from it) and the update is
    ``eff_step * m_hat`` with ``m_hat = exp_avg / (1 - beta1**t)``."""
    model, _ = linear_with_grad("cpu")
    opt = OPTIMIZERS[name](list(model.parameters()))
    opt.step()
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    for _ in range(steps - 2):
        opt.step()
    before = update_ratio.snapshot(model)
    opt.step()
    m_hat = [opt.state[p]["exp_avg"] / (1 - 0.9**steps) for p in model.parameters()]
    moved = [
        (p.detach() - b).abs() / m.abs() for p, b, m in zip(model.parameters(), before.values(), m_hat, strict=True)
    ]
    stats = second_moment.second_moment_stats(opt)
    for label, q in second_moment.QUANTILES:
        assert stats[f"probe/eff_step/{label}"] == pytest.approx(hand_quantile(flat(moved), q), rel=1e-7)


def test_second_moment_stats_subsample_is_the_strided_global_flat() -> None:
    gen = torch.Generator().manual_seed(6)
    a = torch.zeros(5, dtype=torch.float64, requires_grad=True)
    b = torch.zeros(7, dtype=torch.float64, requires_grad=True)
    a.grad = 0.1 + torch.rand(5, generator=gen, dtype=torch.float64)
    b.grad = 0.1 + torch.rand(7, generator=gen, dtype=torch.float64)
    opt = torch.optim.Adam([a, b], lr=LR)
    opt.step()
    g2 = torch.cat([a.grad, b.grad]) ** 2
    sample = g2[::4].tolist()  # 12 coordinates, max 3: stride 4, so a[0], a[4], b[3]
    stats = second_moment.second_moment_stats(opt, max_coords=3)
    for label, q in second_moment.QUANTILES:
        assert stats[f"probe/v_hat/{label}"] == pytest.approx(hand_quantile(sample, q), rel=1e-12)
    full = second_moment.second_moment_stats(opt)
    assert full["probe/v_hat/q50"] == pytest.approx(hand_quantile(g2.tolist(), 0.5), rel=1e-12)


def test_no_second_moment_gives_nothing() -> None:
    model, _ = linear_with_grad("cpu")
    sgd = torch.optim.SGD(model.parameters(), lr=LR, momentum=0.9)
    sgd.step()
    assert second_moment.second_moment_stats(sgd) == {}
    assert second_moment.second_moment_error(sgd, [torch.ones_like(p) for p in model.parameters()]) == {}
    assert second_moment.adam_preconditioner(sgd) is None
    fresh = torch.optim.Adam(model.parameters(), lr=LR)  # no step yet: empty state
    assert second_moment.second_moment_stats(fresh) == {}
    assert second_moment.adam_preconditioner(fresh) is None
    with pytest.raises(TypeError, match="Adagrad"):
        second_moment.second_moment_stats(torch.optim.Adagrad(model.parameters()))


# --- second moment error --------------------------------------------------------------------------------------


def mse_model(device: str) -> tuple[nn.Linear, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]]:
    torch.manual_seed(1)
    model = nn.Linear(3, 2).double().to(device)
    return model, lambda x, y: F.mse_loss(model(x), y)


@pytest.mark.parametrize("device", DEVICES)
def test_second_moment_error_when_every_batch_has_the_same_gradient(device: str) -> None:
    model, loss_of = mse_model(device)
    gen = torch.Generator().manual_seed(2)
    x, y = torch.randn(8, 3, generator=gen, dtype=torch.float64), torch.randn(8, 2, generator=gen, dtype=torch.float64)
    batches = [(x.to(device), y.to(device))] * 3
    params = list(model.parameters())
    v_ref = second_moment.reference_second_moment(loss_of, params, batches)
    g = torch.autograd.grad(loss_of(*batches[0]), params)
    for ref, gi in zip(v_ref, g, strict=True):
        assert torch.allclose(ref, gi**2, rtol=1e-12, atol=0)
    for p, gi in zip(params, g, strict=True):
        p.grad = gi.clone()
    snapshot = [p.detach().clone() for p in params]

    adam = torch.optim.Adam(params, lr=LR)
    adam.step()  # v_hat = g^2 = v_ref
    assert second_moment.second_moment_error(adam, v_ref)[second_moment.V_HAT_REL_ERROR] == pytest.approx(
        0.0, abs=1e-12
    )

    with torch.no_grad():
        for p, s in zip(params, snapshot, strict=True):
            p.copy_(s)
    rmsprop = torch.optim.RMSprop(params, lr=LR, alpha=0.99)
    rmsprop.step()  # square_avg = 0.01 g^2: ||0.01 v_ref - v_ref|| / ||v_ref|| = 0.99
    assert second_moment.second_moment_error(rmsprop, v_ref)[second_moment.V_HAT_REL_ERROR] == pytest.approx(
        0.99, rel=1e-12
    )


def test_reference_second_moment_and_error_in_closed_form() -> None:
    """``loss_b = 0.5 (w.x_b - y_b)^2`` at ``w = 0`` has gradient ``g_b = -y_b x_b``."""
    model = nn.Linear(3, 1, bias=False).double()
    nn.init.zeros_(model.weight)
    xs = [torch.tensor([[1.0, -2.0, 0.5]]), torch.tensor([[3.0, 1.0, -1.0]]), torch.tensor([[0.0, 2.0, 4.0]])]
    ys = [torch.tensor([2.0]), torch.tensor([-1.0]), torch.tensor([0.5])]
    batches = [(x.double(), y.double()) for x, y in zip(xs, ys, strict=True)]

    def loss_of(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return 0.5 * ((model(x).squeeze(-1) - y) ** 2).sum()

    v_ref = second_moment.reference_second_moment(loss_of, [model.weight], batches)
    grads = [-y * x for x, y in batches]  # each (1, 3)
    expected = torch.stack([g**2 for g in grads]).mean(dim=0)
    assert torch.allclose(v_ref[0], expected, rtol=1e-15, atol=0)

    model.weight.grad = grads[0].clone()
    adam = torch.optim.Adam(model.parameters(), lr=LR)
    adam.step()  # v_hat = g_0^2
    error = (torch.linalg.vector_norm(grads[0] ** 2 - expected) / torch.linalg.vector_norm(expected)).item()
    assert second_moment.second_moment_error(adam, v_ref)[second_moment.V_HAT_REL_ERROR] == pytest.approx(
        error, rel=1e-12
    )
    with pytest.raises(ValueError, match="shape"):
        second_moment.second_moment_error(adam, [torch.ones(3)])
    with pytest.raises(ValueError, match="tensors"):
        second_moment.second_moment_error(adam, [])


# --- update ratios ----------------------------------------------------------------------------------------------


def test_update_ratio_of_unmoved_and_zero_tensors() -> None:
    model = nn.Linear(2, 2).double()
    nn.init.zeros_(model.bias)
    before = update_ratio.snapshot(model)
    assert update_ratio.layer_update_ratios(before, model) == {
        "probe/update_ratio/weight": 0.0,
        "probe/update_ratio/bias": 0.0,
    }
    with torch.no_grad():
        model.bias.add_(1.0)
        model.weight.mul_(1.5)
    ratios = update_ratio.layer_update_ratios(before, model)
    assert ratios["probe/update_ratio/bias"] == math.inf
    assert ratios["probe/update_ratio/weight"] == pytest.approx(0.5, rel=1e-12)
    with pytest.raises(ValueError, match="bias"):
        update_ratio.layer_update_ratios({"weight": before["weight"]}, model)


# --- dead units -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("device", DEVICES)
def test_dead_relu_share_counts_units_dead_on_every_example(device: str) -> None:
    torch.manual_seed(0)
    model = MLP(4, 3, [5, 4], "relu").to(device)  # Linear, ReLU ("1"), Linear, ReLU ("3"), Linear
    x = torch.randn(16, 4, generator=torch.Generator().manual_seed(1)).to(device)
    x[:, 0] = torch.tensor([1.0, -1.0] * 8)
    with torch.no_grad():
        first, second = model[0], model[2]
        assert isinstance(first, nn.Linear) and isinstance(second, nn.Linear)
        first.bias.copy_(torch.tensor([0.0, 100.0, -1e6, 100.0, 100.0]))  # unit 2 always dead
        first.weight[0] = torch.tensor([1.0, 0.0, 0.0, 0.0])  # unit 0: zero on half the examples only
        second.bias.copy_(torch.tensor([1e4, -1e6, 1e4, -1e6]))  # units 1 and 3 always dead
    out = dead_relu.dead_relu_share(model, x)
    assert out == {"probe/dead_relu/1": 1 / 5, "probe/dead_relu/3": 2 / 4, "probe/dead_relu": 3 / 9}
    assert all(not m._forward_hooks for m in model.modules())
    assert dead_relu.dead_relu_share(nn.Sequential(nn.Linear(4, 2), nn.Tanh()).to(device), x) == {}


# --- no probe changes what it measures --------------------------------------------------------------------------


def state_copy(opt: torch.optim.Optimizer) -> list[dict[str, object]]:
    return [
        {k: v.clone() if isinstance(v, torch.Tensor) else v for k, v in opt.state[p].items()}
        for p in update_ratio.optimizer_params(opt)
    ]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("make", [OPTIMIZERS["adam"], OPTIMIZERS["rmsprop_centered"]], ids=["adam", "rmsprop"])
def test_probes_leave_parameters_gradients_and_optimizer_state_unchanged(
    make: Callable[[list[torch.Tensor]], torch.optim.Optimizer], device: str
) -> None:
    torch.manual_seed(0)
    model = MLP(6, 3, [8], "relu").to(device)
    gen = torch.Generator().manual_seed(4)
    x, y = torch.randn(32, 6, generator=gen).to(device), torch.randint(0, 3, (32,), generator=gen).to(device)
    opt = make(list(model.parameters()))
    for _ in range(2):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    opt.zero_grad()
    F.cross_entropy(model(x), y).backward()  # leave gradients in p.grad
    params = update_ratio.optimizer_params(opt)
    params_before = [p.detach().clone() for p in params]
    grads_before = [p.grad.clone() for p in params if p.grad is not None]
    state_before = state_copy(opt)
    groups_before = [{k: v for k, v in g.items() if k != "params"} for g in opt.param_groups]

    def loss_of(xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(model(xb), yb)

    named = update_ratio.snapshot(model)
    assert update_ratio.layer_update_ratios(named, model)
    assert second_moment.second_moment_stats(opt)
    v_ref = second_moment.reference_second_moment(loss_of, params, [(x[:16], y[:16]), (x[16:], y[16:])])
    assert second_moment.second_moment_error(opt, v_ref)
    d = second_moment.adam_preconditioner(opt)
    assert d is not None
    assert math.isfinite(sharpness.top_hessian_eigenvalue(lambda: loss_of(x, y), params, iters=3, preconditioner=d))
    assert sharpness.sharpness(lambda: loss_of(x, y), params, lr=LR, iters=3, preconditioner=d)
    assert dead_relu.dead_relu_share(model, x)

    assert all(torch.equal(p, b) for p, b in zip(params, params_before, strict=True))
    assert len(grads_before) == len(params)
    assert all(p.grad is not None and torch.equal(p.grad, g) for p, g in zip(params, grads_before, strict=True))
    after = state_copy(opt)
    for s_before, s_after in zip(state_before, after, strict=True):
        assert s_before.keys() == s_after.keys()
        for k, v in s_before.items():
            w = s_after[k]
            assert torch.equal(v, w) if isinstance(v, torch.Tensor) and isinstance(w, torch.Tensor) else v == w
    assert groups_before == [{k: v for k, v in g.items() if k != "params"} for g in opt.param_groups]
    assert all(not m._forward_hooks for m in model.modules())
