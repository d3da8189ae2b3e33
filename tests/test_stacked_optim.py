"""The stacked optimizer against torch.optim: each member of a stack follows its solo torch.optim run."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch

from ablate.run.optim.build import optimizer_class, set_lr
from ablate.run.optim.config import AdamConfig, MomentumConfig, RMSpropConfig, SGDConfig
from ablate.run.stacked.optim import StackedOptimizer, stack_key

STEPS = 200
SHAPES = [(5,), (2, 3), ()]
"""One member's parameters: a vector, a matrix (stacked: 3 dims) and a scalar (stacked: 1 dim)."""

RTOL, ATOL = 1e-5, 1e-6
"""float32 tolerance of a member's parameters and state after STEPS steps against its solo torch.optim run
(foreach=False). Measured on CPU (torch 2.13, AVX512): max |stacked - solo| = 0 for every case below, i.e. bitwise
equal. For scale, measured on the same cases: rates passed as float32 instead of float64 give up to 2.4e-7 (the Adam
family; 0 elsewhere), and computing the per-member coefficients in float32 instead of float64 up to 4.8e-6 absolute
and 8.7e-5 relative (RAdam, RMSprop), which this tolerance would not pass. It leaves room for kernels that round
differently elsewhere (another CPU, fused or reordered multiply-adds): a few float32 ulps per step, compounding."""


def close(actual: torch.Tensor, expected: torch.Tensor, what: str) -> None:
    """``assert_close`` at the stated tolerance, naming what differs."""
    torch.testing.assert_close(actual, expected, rtol=RTOL, atol=ATOL, msg=lambda detail: f"{what}: {detail}")


def sgd(wd: float) -> SGDConfig:
    return SGDConfig(name="sgd", default_lr=0.1, tuned_lr=0.1, weight_decay=wd)


def momentum(mu: float, wd: float, dampening: float = 0.0, nesterov: bool = False) -> MomentumConfig:
    return MomentumConfig(
        name="momentum",
        default_lr=0.1,
        tuned_lr=0.1,
        momentum=mu,
        nesterov=nesterov,
        dampening=dampening,
        weight_decay=wd,
    )


def adam(name: str, beta1: float, beta2: float, eps: float, wd: float, amsgrad: bool = False) -> AdamConfig:
    return AdamConfig(
        name=name,
        default_lr=1e-3,
        tuned_lr=1e-3,
        beta1=beta1,
        beta2=beta2,
        eps=eps,
        weight_decay=wd,
        amsgrad=amsgrad,
    )


def rmsprop(alpha: float, eps: float, mu: float, wd: float, centered: bool = False) -> RMSpropConfig:
    return RMSpropConfig(
        name="rmsprop",
        default_lr=1e-2,
        tuned_lr=1e-2,
        alpha=alpha,
        eps=eps,
        momentum=mu,
        centered=centered,
        weight_decay=wd,
    )


CASES: dict[str, tuple[list[Any], list[float]]] = {
    # id: (three members' configs, their peak rates)
    "sgd": ([sgd(0.0), sgd(1e-2), sgd(0.3)], [0.05, 0.1, 0.02]),
    "momentum": ([momentum(0.9, 0.0), momentum(0.5, 1e-2), momentum(0.99, 0.1)], [0.02, 0.05, 0.005]),
    "momentum-dampening": (
        [momentum(0.9, 1e-2, dampening=0.1), momentum(0.0, 0.0, dampening=0.5), momentum(0.6, 0.0, dampening=0.9)],
        [0.02, 0.05, 0.03],
    ),
    "nesterov": (
        [momentum(0.9, 0.0, nesterov=True), momentum(0.5, 1e-2, nesterov=True), momentum(0.99, 0.1, nesterov=True)],
        [0.02, 0.05, 0.005],
    ),
    "adam": (
        [adam("adam", 0.9, 0.999, 1e-8, 0.0), adam("adam", 0.8, 0.99, 1e-6, 1e-2), adam("adam", 0.0, 0.9, 1e-3, 0.1)],
        [1e-2, 3e-2, 3e-3],
    ),
    "adam-amsgrad": (
        [adam("adam", 0.9, 0.999, 1e-8, 0.0, True), adam("adam", 0.8, 0.9, 1e-6, 1e-2, True)]
        + [adam("adam", 0.95, 0.99, 1e-3, 0.0, True)],
        [1e-2, 3e-2, 3e-3],
    ),
    "adamw": (
        [
            adam("adamw", 0.9, 0.999, 1e-8, 0.0),
            adam("adamw", 0.8, 0.99, 1e-6, 1e-2),
            adam("adamw", 0.5, 0.9, 1e-3, 0.5),
        ],
        [1e-2, 3e-2, 3e-3],
    ),
    "adamw-amsgrad": (
        [adam("adamw", 0.9, 0.999, 1e-8, 0.1, True), adam("adamw", 0.8, 0.9, 1e-6, 0.0, True)]
        + [adam("adamw", 0.95, 0.99, 1e-3, 1e-2, True)],
        [1e-2, 3e-2, 3e-3],
    ),
    # beta2 0.999 / 0.9 / 0.7 switch to the rectified update (rho_t > 5) at different steps (0.7: rho_inf = 5.67)
    "radam": (
        [adam("radam", 0.9, 0.999, 1e-8, 0.0), adam("radam", 0.8, 0.9, 1e-6, 1e-2), adam("radam", 0.5, 0.7, 1e-3, 0.1)],
        [1e-2, 3e-2, 3e-3],
    ),
    "rmsprop": (
        [rmsprop(0.99, 1e-8, 0.0, 0.0), rmsprop(0.9, 1e-6, 0.0, 1e-2), rmsprop(0.5, 1e-3, 0.0, 0.1)],
        [1e-3] * 3,
    ),
    "rmsprop-momentum": (
        [rmsprop(0.99, 1e-8, 0.9, 0.0), rmsprop(0.9, 1e-6, 0.5, 1e-2), rmsprop(0.5, 1e-3, 0.1, 0.1)],
        [1e-3, 3e-3, 1e-2],
    ),
    # the middle member has momentum 0 inside a momentum stack: torch's no-buffer branch
    "rmsprop-centered-momentum": (
        [rmsprop(0.99, 1e-8, 0.9, 0.0, True), rmsprop(0.9, 1e-6, 0.0, 1e-2, True), rmsprop(0.5, 1e-3, 0.5, 0.1, True)],
        [1e-3, 3e-3, 1e-2],
    ),
}


class Problem:
    """Member m's loss on parameter k (flattened to x): ``|A x - b|^2 / (2n) + 0.025 |x|_4^4``, a fixed random
    least-squares problem per member and parameter plus a quartic wall, so each step's gradient
    ``A^T (A x - b) / n + 0.1 x^3`` depends on the updates so far. The same function gives the stacked and the solo
    gradients, member by member, so they are bitwise equal wherever the parameters are."""

    def __init__(self, members: int, seed: int = 0) -> None:
        gen = torch.Generator().manual_seed(seed)
        self.init = [torch.randn((members, *shape), generator=gen) for shape in SHAPES]
        self.a = [[torch.randn(8, math.prod(shape), generator=gen) for shape in SHAPES] for _ in range(members)]
        self.b = [[torch.randn(8, generator=gen) for _ in SHAPES] for _ in range(members)]

    def grad(self, member: int, k: int, x: torch.Tensor) -> torch.Tensor:
        a, b, flat = self.a[member][k], self.b[member][k], x.detach().reshape(-1)
        return (a.T @ (a @ flat - b) / a.shape[0] + 0.1 * flat**3).reshape(x.shape)


def rate(peak: float, member: int, t: int) -> float:
    """Member ``member``'s rate at step t (0-based): linear warmup over 10 (member + 1) steps, then cosine decay."""
    warmup = 10 * (member + 1)
    return peak * min(1.0, (t + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * t / STEPS))


def stacked_run(
    cfgs: list[Any], peaks: list[float], steps: int = STEPS, drop_at: int | None = None, keep: list[int] | None = None
) -> tuple[list[torch.Tensor], StackedOptimizer, list[int]]:
    """Train the stack for ``steps`` steps; at step ``drop_at`` keep only members ``keep`` (compacting the
    parameters into new leaves, as the stacked loop does). Returns the parameters, the optimizer and the members
    (original indices) left."""
    problem = Problem(len(cfgs))
    params = [p.clone().requires_grad_() for p in problem.init]
    optimizer = StackedOptimizer(cfgs, params)
    members = list(range(len(cfgs)))
    for t in range(steps):
        if t == drop_at and keep is not None:
            index = torch.tensor(keep)
            optimizer.select(index)
            params = [p.detach()[index].clone().requires_grad_() for p in params]
            members = [members[i] for i in keep]
        for k, p in enumerate(params):
            p.grad = torch.stack([problem.grad(m, k, p[i]) for i, m in enumerate(members)])
        lr = torch.tensor([rate(peaks[m], m, t) for m in members], dtype=torch.float64)
        optimizer.step(params, lr)
    return [p.detach() for p in params], optimizer, members


def solo_run(cfgs: list[Any], peaks: list[float], member: int) -> tuple[list[torch.Tensor], torch.optim.Optimizer]:
    """Member ``member`` alone with torch.optim, built as ablate builds it (``optimizer_class``)."""
    problem = Problem(len(cfgs))
    params = [p[member].clone().requires_grad_() for p in problem.init]
    cls, kwargs, _ = optimizer_class(cfgs[member])
    optimizer = cls(params, lr=peaks[member], foreach=False, **kwargs)
    for t in range(STEPS):
        for k, p in enumerate(params):
            p.grad = problem.grad(member, k, p)
        set_lr(optimizer, rate(peaks[member], member, t))
        optimizer.step()
    return [p.detach() for p in params], optimizer


def max_deviation(case: str) -> float:
    """Largest |stacked - solo| over the members' parameters after STEPS steps (for the tolerance's comment)."""
    cfgs, peaks = CASES[case]
    stacked, _, _ = stacked_run(cfgs, peaks)
    deviation = 0.0
    for m in range(len(cfgs)):
        solo, _ = solo_run(cfgs, peaks, m)
        deviation = max(deviation, *(float((s[m] - p).abs().max()) for s, p in zip(stacked, solo, strict=True)))
    return deviation


@pytest.mark.parametrize("case", list(CASES))
def test_each_member_follows_its_solo_torch_run(case: str) -> None:
    cfgs, peaks = CASES[case]
    stacked, optimizer, _ = stacked_run(cfgs, peaks)
    for s, start in zip(stacked, Problem(len(cfgs)).init, strict=True):
        moved = (s - start).reshape(len(cfgs), -1).abs().amax(dim=1)
        assert bool((moved > 1e-2).all()), f"a member barely moved, the comparison would prove little: {moved}"
    for m in range(len(cfgs)):
        solo, torch_optimizer = solo_run(cfgs, peaks, m)
        for k, (s, p) in enumerate(zip(stacked, solo, strict=True)):
            close(s[m], p, f"member {m} p{k}")
        leaves = torch_optimizer.param_groups[0]["params"]
        for k, (state, leaf) in enumerate(zip(optimizer.state_of(m), leaves, strict=True)):
            expected = {name: v for name, v in torch_optimizer.state[leaf].items() if name != "step"}
            if case.startswith(("momentum", "rmsprop")) and cfgs[m].momentum == 0:
                expected.pop("momentum_buffer", None)  # torch keeps none; the stack's buffer is unused for m
                state.pop("momentum_buffer", None)
            assert state.keys() == expected.keys()
            for name, value in expected.items():
                close(state[name], value, f"member {m} p{k} {name}")


def test_select_drops_members_and_the_rest_continue_as_if_alone() -> None:
    cfgs, peaks = CASES["adam-amsgrad"]
    dropped, optimizer, members = stacked_run(cfgs, peaks, drop_at=50, keep=[0, 2])
    assert members == [0, 2] and optimizer.members == 2 and optimizer.steps == [STEPS] * len(SHAPES)
    full, _, _ = stacked_run(cfgs, peaks)
    for d, f in zip(dropped, full, strict=True):
        assert torch.equal(d, f[[0, 2]])
    for i, m in enumerate(members):
        solo, _ = solo_run(cfgs, peaks, m)
        for d, p in zip(dropped, solo, strict=True):
            close(d[i], p, f"member {m}")


def test_select_in_a_mixed_momentum_stack_keeps_the_masks_right() -> None:
    """Dropping the only member with momentum 0 turns the stack homogeneous (no more torch.where)."""
    cfgs, peaks = CASES["rmsprop-centered-momentum"]
    dropped, _, members = stacked_run(cfgs, peaks, drop_at=30, keep=[0, 2])
    full, _, _ = stacked_run(cfgs, peaks)
    for d, f in zip(dropped, full, strict=True):
        assert torch.equal(d, f[[0, 2]])


def test_two_identical_stacked_runs_are_bitwise_equal() -> None:
    cfgs, peaks = CASES["radam"]
    first, _, _ = stacked_run(cfgs, peaks)
    second, _, _ = stacked_run(cfgs, peaks)
    assert all(torch.equal(a, b) for a, b in zip(first, second, strict=True))


def test_a_member_with_momentum_zero_matches_plain_torch_sgd() -> None:
    """Member 1 of ``momentum-dampening`` has momentum 0 (and dampening 0.5, which torch then ignores)."""
    cfgs, peaks = CASES["momentum-dampening"]
    stacked, _, _ = stacked_run(cfgs, peaks)
    problem = Problem(len(cfgs))
    params = [p[1].clone().requires_grad_() for p in problem.init]
    plain = torch.optim.SGD(params, lr=peaks[1], momentum=0.0, weight_decay=cfgs[1].weight_decay, foreach=False)
    for t in range(STEPS):
        for k, p in enumerate(params):
            p.grad = problem.grad(1, k, p)
        set_lr(plain, rate(peaks[1], 1, t))
        plain.step()
    for s, p in zip(stacked, params, strict=True):
        close(s[1], p.detach(), "member 1")


def test_stack_key_and_refusals() -> None:
    assert stack_key(sgd(0.0)) == ("sgd", False, False, False)
    assert stack_key(momentum(0.9, 0.0, nesterov=True)) == ("momentum", True, False, False)
    assert stack_key(adam("adam", 0.9, 0.999, 1e-8, 0.0, True)) == ("adam", False, True, False)
    assert stack_key(rmsprop(0.99, 1e-8, 0.0, 0.0, True)) == ("rmsprop", False, False, True)
    assert stack_key(adam("adam", 0.8, 0.9, 1e-6, 0.1)) == stack_key(adam("adam", 0.9, 0.999, 1e-8, 0.0))
    params = [torch.zeros(2, 3, requires_grad=True)]
    with pytest.raises(ValueError, match="stack_key"):
        StackedOptimizer([adam("adam", 0.9, 0.999, 1e-8, 0.0), adam("adamw", 0.9, 0.999, 1e-8, 0.0)], params)
    with pytest.raises(ValueError, match="not stacked over 3"):
        StackedOptimizer([sgd(0.0)] * 3, params)
    with pytest.raises(ValueError, match="Nesterov"):
        StackedOptimizer([momentum(0.9, 0.0, nesterov=True), momentum(0.0, 0.0, nesterov=True)], params)
