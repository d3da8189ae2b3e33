"""Checking the user's code before any run starts: build each distinct workload once, on the CPU.

A config that names user code (a model, data, optimizer or schedule by import path, or ``.npz`` data) is
checked here, because whether a target imports, whether its factory builds, whether the model's output fits
the data's task, and how big the data is are not knowable from the config alone. The sweeper calls
``preflight`` once per distinct workload of a grid, a single run before it starts; each failure is one
``ConfigError`` line naming the target and what was expected. Built-in workloads need none of this.
"""

from __future__ import annotations

from typing import Any

import torch

from ablate.checks import ConfigError, check
from ablate.config import Config, check_skew_groups, resolve_batch_size
from ablate.run.data.build import load
from ablate.run.imports import resolve
from ablate.run.models.build import build_model, model_factory
from ablate.run.optim.build import build_optimizer
from ablate.run.schedules import CustomScheduleConfig, check_schedule_function, is_import_path, resolve_warmup_steps
from ablate.run.user_code import uses_user_code, workload_key
from ablate.run.workload import check_model_fits, spec_of


def preflight(c: Config) -> None:
    """Build the config's data, model, optimizer and schedule once on the CPU; raise ConfigError on a mistake."""
    data = load(c.data)
    spec = spec_of(data)
    check(
        resolve_batch_size(c, data.n_train) <= data.n_train,
        f"batch_size={c.batch_size} is not allowed with data={c.data.name}: its training split has {data.n_train} "
        "examples; lower batch_size (or batch_size=full)",
    )
    check_skew_groups(c.skew, c.data.name, spec.n_groups)
    if c.skew.name == "spurious":
        check(
            not spec.tokens and len(spec.input_shape) == 1 and spec.n_features >= data.n_classes,
            f"skew=spurious is not allowed with data={c.data.name}: the cue adds a one-hot label to the first "
            f"{data.n_classes} features of a feature vector; its inputs are {list(spec.input_shape)}",
        )
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = build_model(c.model, spec)
    _, _, key = model_factory(c.model)
    check_model_fits(key, model, data)
    build_optimizer(c.optimizer, model.parameters(), c.lr)
    if c.loss != "auto":
        check_user_loss(c.loss, resolve("loss", c.loss), model, data)
    warmup_steps = resolve_warmup_steps(c)
    if is_import_path(c.warmup_shape) and warmup_steps > 0:
        check_schedule_function(
            f"warmup_shape={c.warmup_shape}",
            resolve("warmup_shape", c.warmup_shape),
            [(0, warmup_steps), (warmup_steps - 1, warmup_steps)],
            None,
        )
    if isinstance(c.schedule, CustomScheduleConfig):
        decay_steps = c.steps - warmup_steps
        function = resolve("schedule.target", c.schedule.target)
        args = c.schedule.args
        check_schedule_function(
            f"schedule.target={c.schedule.target}",
            lambda s, n: function(s, n, **args),
            [(0, decay_steps), (decay_steps - 1, decay_steps)],
            1.0,
        )


def check_all(configs: list[Config]) -> None:
    """``preflight`` once per distinct workload among ``configs`` that use the user's code."""
    seen: set[str] = set()
    for c in configs:
        if not uses_user_code(c):
            continue
        key = workload_key(c)
        if key not in seen:
            seen.add(key)
            preflight(c)


def check_user_loss(target: str, fn: Any, model: Any, data: Any) -> None:
    """The user's loss on the model's output for two training examples is a finite per-example tensor ``[2]``."""
    with torch.no_grad():
        output = model(data.train_x[:2])
        try:
            value = fn(output, data.train_y[:2])
        except Exception as err:
            raise ConfigError(f"loss={target} raised {type(err).__name__} on the model's output: {err}") from None
    ok = isinstance(value, torch.Tensor) and list(value.shape) == [2] and bool(torch.isfinite(value).all())
    got = list(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
    check(
        ok,
        f"loss={target} returned {got} on 2 examples: a loss returns one finite value per example, a tensor [n] "
        "(reduction='none'); ablate takes the mean",
    )
