"""Learning-rate schedules as small pure objects: ``schedule(step) -> lr``.

Convention (one for the whole project). Steps count optimizer updates ``t = 0 .. T-1``; ``T`` (total steps)
includes warmup. Peak learning rate ``p``, warmup length ``W`` (``0 <= W < T``).

* For ``t < W`` the warmup shape runs: ``lr(t) = p * warmup.factor(t, W)``. Every shape's first update
  already moves (no wasted step at zero).
* For ``t >= W`` the base schedule runs over the remaining ``S = T - W`` steps, on ``s = t - W``:
  ``lr(t) = p * base.factor(s, S)``; every base starts at ``factor(0, S) = 1``, i.e. update ``W`` runs at ``p``.

A schedule is the join of one warmup shape and one base (as optax's ``join_schedules``); the caller owns the
step count, nothing is stateful.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from ablate.checks import TARGET, ConfigError, check, check_target, check_user_part, described, is_int
from ablate.run.imports import resolve
from ablate.run.optim.config import second_moment_decay

if TYPE_CHECKING:
    from ablate.config import Config

WARMUP_SHAPES = ("linear", "constant", "exponential", "none", "flat")


@dataclass
class ConstantScheduleConfig:
    name: str = described("base schedule after warmup: the peak learning rate throughout")

    def check(self) -> None:
        pass  # nothing to choose


@dataclass
class DecayScheduleConfig:
    name: str = described("base schedule after warmup: cosine or linear decay to a floor")
    min_lr_fraction: float = described("floor as a fraction of the peak learning rate, in [0, 1]")

    def check(self) -> None:
        check(
            0.0 <= self.min_lr_fraction <= 1.0,
            f"schedule.min_lr_fraction={self.min_lr_fraction} is not allowed: it must be in [0, 1], "
            "e.g. schedule.min_lr_fraction=0",
        )


@dataclass
class InverseSqrtScheduleConfig:
    name: str = described("base schedule after warmup: peak * sqrt(timescale / (s + timescale))")
    timescale_steps: int = described("steps after warmup at which the rate has fallen to peak / sqrt(2)")

    def check(self) -> None:
        check(
            self.timescale_steps >= 1,
            f"schedule.timescale_steps={self.timescale_steps} is not allowed: it must be an integer >= 1, "
            "e.g. schedule.timescale_steps=100",
        )


@dataclass
class CustomScheduleConfig:
    """The user's base schedule by import path: ``schedule=custom schedule.target=mypkg.sched:steps``, a pure
    function ``factor(s, S, **args)`` of the step ``s`` after warmup and the ``S = T - W`` steps after warmup,
    with ``factor(0, S) = 1`` (update ``W`` runs at the peak rate, as for every base schedule)."""

    name: str = described("the schedule's name in run labels and W&B")
    target: str = described("import path of factor(s, S, **args) -> multiplier of the peak rate")
    args: dict[str, Any] = field(default_factory=dict, metadata={"help": "keyword arguments of the function"})

    def check(self) -> None:
        check_target("schedule.target", self.target, "mypkg.schedules:step_decay")
        check_user_part("schedule", self.name, self.args)


SCHEDULES: dict[str, type] = {
    "custom": CustomScheduleConfig,
    "constant": ConstantScheduleConfig,
    "cosine": DecayScheduleConfig,
    "linear": DecayScheduleConfig,
    "inverse_sqrt": InverseSqrtScheduleConfig,
}
"""Option of the ``schedule`` group -> its schema."""


def resolve_warmup_steps(c: Config) -> int:
    """Warmup length W in steps.

    ``warmup`` is an int >= 0, or ``auto``: the untuned rule ``W = ceil(2 / (1 - beta2))`` of Ma & Yarats
    (2021), e.g. 2000 steps for beta2 = 0.999 (RMSProp's ``alpha`` stands in for beta2). ``warmup_shape=none``
    means no warmup whatever W says, so it resolves to 0.
    """
    check(
        c.warmup == "auto" or (is_int(c.warmup) and c.warmup >= 0),
        f"warmup={c.warmup} is not allowed: it must be an integer number of steps >= 0, or auto",
    )
    if c.warmup_shape == "none":
        return 0
    if c.warmup != "auto":
        return int(c.warmup)
    beta2 = second_moment_decay(c.optimizer)
    check(
        beta2 is not None,
        f"warmup=auto is not allowed with optimizer={c.optimizer.name}: the rule ceil(2/(1-beta2)) needs a "
        "second-moment decay (adam, adamw, radam, rmsprop; a custom optimizer with betas, beta2 or alpha among its "
        "arguments or their defaults); set warmup to a number of steps",
    )
    assert beta2 is not None
    check(beta2 > 0, f"warmup=auto needs beta2 > 0, got optimizer beta2={beta2}; set warmup to a number")
    return math.ceil(2.0 / (1.0 - beta2) - 1e-9)  # tolerance: 2/(1-0.999) is 2000.0000000000018


class WarmupShape(Protocol):
    def factor(self, t: int, warmup_steps: int) -> float:
        """Multiplier of the peak rate at step ``t < warmup_steps``."""
        ...


class BaseSchedule(Protocol):
    def factor(self, s: int, decay_steps: int) -> float:
        """Multiplier of the peak rate ``s`` steps after warmup, ``0 <= s < decay_steps``."""
        ...


# ---------------------------------------------------------------------------------------- warmup shapes
@dataclass(frozen=True)
class LinearWarmup:
    """``factor(t) = (t + 1) / W``: ``p/W`` at ``t = 0``, exactly ``p`` at ``t = W-1``."""

    def factor(self, t: int, warmup_steps: int) -> float:
        return (t + 1) / warmup_steps


@dataclass(frozen=True)
class ConstantWarmup:
    """``factor(t) = c``: a constant fraction ``c`` of the peak for all ``W`` warmup steps (Goyal et al. 2017)."""

    fraction: float

    def factor(self, t: int, warmup_steps: int) -> float:
        return self.fraction


@dataclass(frozen=True)
class ExponentialWarmup:
    """``factor(t) = c ** (1 - (t + 1) / W)``: a geometric ramp from about ``c`` to exactly 1 at ``t = W-1``.

    Each step multiplies the rate by ``c ** (-1/W)``; at ``t = 0`` the factor is ``c ** ((W - 1) / W)``.
    """

    start_fraction: float

    def factor(self, t: int, warmup_steps: int) -> float:
        return self.start_fraction ** (1.0 - (t + 1) / warmup_steps)


# ----------------------------------------------------------------------------------------- base schedules
@dataclass(frozen=True)
class ConstantBase:
    """``factor(s) = 1``."""

    def factor(self, s: int, decay_steps: int) -> float:
        return 1.0


@dataclass(frozen=True)
class CosineBase:
    """``factor(s) = f + (1 - f) * (1 + cos(pi * s / S)) / 2`` with floor ``f`` (fraction of the peak).

    ``s / S`` never reaches 1 on a real step, so the last update (``s = S-1``) runs slightly above the
    floor instead of wasting a step at it (optax's ``cosine_decay_schedule`` reaches ``f`` at ``s = S``).
    """

    min_lr_fraction: float

    def factor(self, s: int, decay_steps: int) -> float:
        f = self.min_lr_fraction
        return f + (1.0 - f) * 0.5 * (1.0 + math.cos(math.pi * s / decay_steps))


@dataclass(frozen=True)
class LinearBase:
    """``factor(s) = 1 - (1 - f) * s / S``: a straight line from the peak towards the floor ``f``."""

    min_lr_fraction: float

    def factor(self, s: int, decay_steps: int) -> float:
        return 1.0 - (1.0 - self.min_lr_fraction) * s / decay_steps


@dataclass(frozen=True)
class InverseSqrtBase:
    """``factor(s) = sqrt(tau / (s + tau))``: 1 at ``s = 0``, ``1/sqrt(2)`` at ``s = tau``."""

    timescale_steps: int

    def factor(self, s: int, decay_steps: int) -> float:
        return math.sqrt(self.timescale_steps / (s + self.timescale_steps))


# ---------------------------------------------------------------------------------------------- joined
@dataclass(frozen=True)
class Schedule:
    """``lr(t) = p * warmup.factor(t, W)`` for ``t < W``, else ``p * base.factor(t - W, T - W)``."""

    peak_lr: float
    total_steps: int
    warmup_steps: int
    warmup: WarmupShape
    base: BaseSchedule

    def __post_init__(self) -> None:
        if not 0 <= self.warmup_steps < self.total_steps:
            raise ValueError(
                f"warmup_steps={self.warmup_steps} must satisfy 0 <= warmup_steps < total_steps={self.total_steps}"
            )

    def __call__(self, step: int) -> float:
        if not 0 <= step < self.total_steps:
            raise ValueError(f"step={step} is outside 0 .. {self.total_steps - 1}")
        if step < self.warmup_steps:
            return self.peak_lr * self.warmup.factor(step, self.warmup_steps)
        decay_steps = self.total_steps - self.warmup_steps
        return self.peak_lr * self.base.factor(step - self.warmup_steps, decay_steps)

    def values(self) -> list[float]:
        """The learning rate of every step ``0 .. T-1``."""
        return [self(t) for t in range(self.total_steps)]


def warmup_shape(name: str, start_fraction: float) -> WarmupShape:
    """The warmup shape called ``name`` (``none`` never runs, since it forces ``W = 0``)."""
    if is_import_path(name):
        return FunctionWarmup(resolve("warmup_shape", name))
    shapes: dict[str, WarmupShape] = {
        "linear": LinearWarmup(),
        "none": LinearWarmup(),
        "constant": ConstantWarmup(start_fraction),
        "exponential": ExponentialWarmup(start_fraction),
        "flat": LinearWarmup(),  # never runs: build_schedule makes the area-matched control instead
    }
    return shapes[name]


@dataclass(frozen=True)
class FunctionWarmup:
    """A user's warmup shape: ``factor(t, W)`` by import path (``warmup_shape=mypkg.schedules:quadratic``)."""

    function: Callable[[int, int], float]

    def factor(self, t: int, warmup_steps: int) -> float:
        return float(self.function(t, warmup_steps))


@dataclass(frozen=True)
class FunctionBase:
    """A user's base schedule: ``factor(s, S, **args)`` by import path (``schedule=custom``)."""

    function: Callable[[int, int], float]  # the user's function with its args bound

    def factor(self, s: int, decay_steps: int) -> float:
        return float(self.function(s, decay_steps))


def is_import_path(shape: str) -> bool:
    """A warmup shape given as an import path (``module:function``) rather than a built-in name."""
    return shape not in WARMUP_SHAPES and TARGET.fullmatch(shape) is not None and ("." in shape or ":" in shape)


def check_schedule_function(
    key: str, function: Callable[..., float], at: list[tuple[int, int]], first: float | None
) -> None:
    """A user's schedule function returns finite factors in [0, 1] at the steps ``at`` (and ``first`` at the
    first of them); raise ConfigError with one line otherwise."""
    for s, n in at:
        try:
            value = float(function(s, n))
        except Exception as err:
            raise ConfigError(f"{key}: calling it at ({s}, {n}) raised {type(err).__name__}: {err}") from None
        check(
            math.isfinite(value) and 0.0 <= value <= 1.0,
            f"{key}: factor({s}, {n}) = {value} is not allowed: a schedule returns a multiplier of the peak rate in "
            "[0, 1]",
        )
        if first is not None and (s, n) == at[0]:
            check(
                abs(value - first) < 1e-12,
                f"{key}: factor(0, {n}) = {value} is not allowed: a base schedule starts at the peak, factor(0, S) = 1",
            )


def base_schedule(cfg: object) -> BaseSchedule:
    """The base schedule for a ``schedule`` config group option."""
    if isinstance(cfg, CustomScheduleConfig):
        function = resolve("schedule.target", cfg.target)
        return FunctionBase(functools.partial(function, **cfg.args))
    if isinstance(cfg, ConstantScheduleConfig):
        return ConstantBase()
    if isinstance(cfg, DecayScheduleConfig):
        return (CosineBase if cfg.name == "cosine" else LinearBase)(cfg.min_lr_fraction)
    if isinstance(cfg, InverseSqrtScheduleConfig):
        return InverseSqrtBase(cfg.timescale_steps)
    raise TypeError(f"unknown schedule config {cfg!r}")


def build_schedule(config: Config) -> Schedule:
    base = base_schedule(config.schedule)
    warmup_steps = resolve_warmup_steps(config)
    if config.warmup_shape == "flat":
        return flat_control(config.lr, config.steps, warmup_steps, base)
    return Schedule(
        peak_lr=config.lr,
        total_steps=config.steps,
        warmup_steps=warmup_steps,
        warmup=warmup_shape(config.warmup_shape, config.warmup_start_fraction),
        base=base,
    )


def flat_control(peak_lr: float, total_steps: int, warmup_steps: int, base: BaseSchedule) -> Schedule:
    """``warmup_shape=flat``: no ramp, the base schedule scaled to spend the same learning-rate budget as
    linear warmup of ``W`` steps: ``peak' = p * sum_t lr_linear(t) / sum_t lr_none(t)``.

    The control for "warmup helps only because it lowers the total step size": same area under the
    schedule, no low-rate start. With a constant base the ratio is ``1 - (W - 1) / (2 T)``.
    """
    ramped = Schedule(peak_lr, total_steps, warmup_steps, LinearWarmup(), base)
    plain = Schedule(peak_lr, total_steps, 0, LinearWarmup(), base)
    scale = math.fsum(ramped.values()) / math.fsum(plain.values())
    return Schedule(peak_lr * scale, total_steps, 0, LinearWarmup(), base)
