"""Schedules: exact values at t = 0, 1, W-1, W, T-1, monotonicity, and warmup=auto."""

from __future__ import annotations

import math

import pytest

from ablate.checks import ConfigError
from ablate.run.schedules import (
    ConstantBase,
    ConstantWarmup,
    CosineBase,
    ExponentialWarmup,
    InverseSqrtBase,
    LinearBase,
    LinearWarmup,
    Schedule,
    build_schedule,
)
from tests.conftest import make_config

P = 0.3  # peak learning rate
GRID = [(0, 1), (0, 10), (1, 2), (1, 10), (2, 3), (5, 10), (10, 11), (100, 1000), (500, 1000), (999, 1000)]


def linear(W: int, T: int) -> Schedule:
    return Schedule(P, T, W, LinearWarmup(), ConstantBase())


@pytest.mark.parametrize("W,T", GRID)
def test_linear_warmup_exact_values(W: int, T: int) -> None:
    s = linear(W, T)
    expected = {t: (P * (t + 1) / W if t < W else P) for t in {0, 1, W - 1, W, T - 1} if 0 <= t < T}
    for t, value in expected.items():
        assert s(t) == pytest.approx(value, rel=1e-12), t
    if W > 0:
        assert s(0) == pytest.approx(P / W)  # the first update already moves
        assert s(W - 1) == pytest.approx(P)  # update W-1 is the first at the peak
    assert s(T - 1) == pytest.approx(P)


@pytest.mark.parametrize("W,T", GRID)
def test_constant_and_exponential_warmup_exact_values(W: int, T: int) -> None:
    c = 0.1
    const = Schedule(P, T, W, ConstantWarmup(c), ConstantBase())
    expo = Schedule(P, T, W, ExponentialWarmup(c), ConstantBase())
    for t in {0, 1, W - 1, W, T - 1}:
        if not 0 <= t < T:
            continue
        if t < W:
            assert const(t) == pytest.approx(c * P)
            assert expo(t) == pytest.approx(P * c ** (1 - (t + 1) / W))
        else:
            assert const(t) == pytest.approx(P) and expo(t) == pytest.approx(P)
    if W > 0:
        assert expo(W - 1) == pytest.approx(P)
        assert expo(0) == pytest.approx(P * c ** ((W - 1) / W))


@pytest.mark.parametrize("W,T", GRID)
def test_decay_bases_exact_values(W: int, T: int) -> None:
    f = 0.1
    S = T - W
    cos = Schedule(P, T, W, LinearWarmup(), CosineBase(f))
    lin = Schedule(P, T, W, LinearWarmup(), LinearBase(f))
    isq = Schedule(P, T, W, LinearWarmup(), InverseSqrtBase(50))
    for t in {W, W + 1, T - 1}:
        if not W <= t < T:
            continue
        s = t - W
        assert cos(t) == pytest.approx(P * (f + (1 - f) * 0.5 * (1 + math.cos(math.pi * s / S))))
        assert lin(t) == pytest.approx(P * (1 - (1 - f) * s / S))
        assert isq(t) == pytest.approx(P * math.sqrt(50 / (s + 50)))
    for sched in (cos, lin, isq):
        assert sched(W) == pytest.approx(P)  # every base starts at the peak
    if S > 1:
        assert cos(T - 1) > f * P and lin(T - 1) > f * P  # the last update is not wasted at the floor


@pytest.mark.parametrize("W,T", GRID)
def test_monotonicity(W: int, T: int) -> None:
    for warm in (LinearWarmup(), ExponentialWarmup(0.01)):
        values = Schedule(P, T, W, warm, ConstantBase()).values()
        ramp = values[:W]
        assert all(a < b for a, b in zip(ramp[:-1], ramp[1:], strict=True)), "warmup must rise strictly"
    for base in (CosineBase(0.0), LinearBase(0.2), InverseSqrtBase(10)):
        values = Schedule(P, T, W, LinearWarmup(), base).values()[W:]
        assert all(a >= b for a, b in zip(values[:-1], values[1:], strict=True)), "decay must not rise"
        assert all(v > 0 for v in values)


def test_schedule_rejects_steps_outside_the_run() -> None:
    s = linear(10, 100)
    with pytest.raises(ValueError, match="outside 0 .. 99"):
        s(100)
    with pytest.raises(ValueError, match="outside"):
        s(-1)
    with pytest.raises(ValueError, match="warmup_steps=100"):
        linear(100, 100)


def test_build_schedule_from_config() -> None:
    s = build_schedule(make_config("warmup=100", "lr=0.01", "schedule=cosine", "schedule.min_lr_fraction=0.1"))
    assert (s.warmup_steps, s.total_steps, s.peak_lr) == (100, 1000, 0.01)
    assert s(0) == pytest.approx(0.01 / 100) and s(99) == pytest.approx(0.01) and s(100) == pytest.approx(0.01)
    shape_none = build_schedule(make_config("warmup=100", "warmup_shape=none"))
    assert shape_none.warmup_steps == 0 and shape_none(0) == pytest.approx(1e-3)


@pytest.mark.parametrize(
    "overrides,steps",
    [
        (("optimizer=adam",), 2000),  # 2 / (1 - 0.999)
        (("optimizer=adamw", "optimizer.beta2=0.99"), 200),
        (("optimizer=radam", "optimizer.beta2=0.98"), 100),
        (("optimizer=rmsprop",), 200),  # alpha = 0.99 plays beta2's role
        (("optimizer=adam", "optimizer.beta2=0.995"), 400),
    ],
)
def test_warmup_auto_is_the_untuned_rule(overrides: tuple[str, ...], steps: int) -> None:
    s = build_schedule(make_config("warmup=auto", "steps=5000", *overrides))
    assert s.warmup_steps == steps


@pytest.mark.parametrize("optimizer", ["sgd", "momentum"])
def test_warmup_auto_without_beta2_is_a_clear_error(optimizer: str) -> None:
    with pytest.raises(ConfigError, match=f"warmup=auto is not allowed with optimizer={optimizer}: .*beta2"):
        make_config("warmup=auto", f"optimizer={optimizer}")


@pytest.mark.parametrize("schedule", ["constant", "cosine"])
def test_flat_control_spends_the_same_budget_as_linear_warmup_without_a_ramp(schedule: str) -> None:
    linear = build_schedule(make_config("warmup=100", "steps=1000", f"schedule={schedule}")).values()
    flat = build_schedule(make_config("warmup=100", "steps=1000", "warmup_shape=flat", f"schedule={schedule}"))
    assert flat.warmup_steps == 0 and math.fsum(flat.values()) == pytest.approx(math.fsum(linear), rel=1e-12)
    if schedule == "constant":  # the closed form: p * (1 - (W - 1) / (2 T))
        assert flat.values() == pytest.approx([1e-3 * (1 - 99 / 2000)] * 1000, rel=1e-12)
