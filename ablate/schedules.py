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

import math
from dataclasses import dataclass
from typing import Protocol

from ablate.config import (
    Config,
    ConstantScheduleConfig,
    DecayScheduleConfig,
    InverseSqrtScheduleConfig,
    resolve_warmup_steps,
)


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
    shapes: dict[str, WarmupShape] = {
        "linear": LinearWarmup(),
        "none": LinearWarmup(),
        "constant": ConstantWarmup(start_fraction),
        "exponential": ExponentialWarmup(start_fraction),
        "flat": LinearWarmup(),  # never runs: build_schedule makes the area-matched control instead
    }
    return shapes[name]


def base_schedule(cfg: object) -> BaseSchedule:
    """The base schedule for a ``schedule`` config group option."""
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
