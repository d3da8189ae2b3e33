"""Which runs may train together in one stack, and why a run trains alone (torch-free: the launchers group with it).

A stack is M runs ("members") of one architecture on one dataset, trained as one batched model: every parameter
is one ``[M, ...]`` tensor, each member's forward pass is ``vmap``-ed over that leading dimension, and one
optimizer step updates all members with their own hyperparameters (``ablate.run.stacked.optim``).

**Shared by every member** (``stack_key``): the model and data configs, ``batch_size``, ``steps``, ``eval_every``,
``metrics_every``, ``loss``, ``device``, ``cpu_threads``, ``smoke``, ``fail_at_step``, ``probes``, ``tracker``,
``study``, and the optimizer's kind with its structural switches (``nesterov``, ``amsgrad``, ``centered``).

**Free per member**: ``seed`` (init and batch order), ``lr``, ``lr_scale``, ``lr_sharpness_multiple``, ``warmup``,
``warmup_shape``, ``warmup_start_fraction``, ``schedule``, the optimizer's numbers (betas, eps, alpha, momentum,
dampening, weight decay), ``skew`` (all of it), ``diverge_factor``, ``diverge_window`` and ``untrained_margin``.

**Alone** (``solo_reason``): runs with a probe on (probes read one model's optimizer state and Hessian), runs with a
user optimizer (``optimizer=custom``: its maths is not known to the stacked optimizer), and models with dropout
(a stacked run could not draw the solo run's dropout masks). A user model is stacked when ``vmap`` runs it;
otherwise its stack trains member by member, and says so in one line.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

STACKABLE_OPTIMIZERS = ("sgd", "momentum", "adam", "adamw", "radam", "rmsprop")
SHARED = (
    "model",
    "data",
    "batch_size",
    "steps",
    "eval_every",
    "metrics_every",
    "loss",
    "device",
    "cpu_threads",
    "smoke",
    "fail_at_step",
    "probes",
    "tracker",
    "study",
)
"""Top-level config keys every member of a stack shares (the module docstring)."""
OPTIMIZER_SWITCHES = ("nesterov", "amsgrad", "centered")


def solo_reason(config: Any) -> str | None:
    """Why the run of ``config`` cannot be a stack member (one line), or None when it can."""
    from ablate.run.probes.config import INTERVALS

    probes = [key for key in INTERVALS if getattr(config.probes, key) > 0]
    if probes:
        return f"probes on ({', '.join(f'probes.{key}' for key in probes)}): probes measure one model at a time"
    if config.optimizer.name not in STACKABLE_OPTIMIZERS or hasattr(config.optimizer, "target"):
        return f"optimizer={config.optimizer.name} has no stacked version (stacked: {', '.join(STACKABLE_OPTIMIZERS)})"
    if getattr(config.model, "dropout", 0.0):
        return f"model.dropout={config.model.dropout}: a stack cannot draw the solo run's dropout masks"
    return None


def stack_key(config: Any) -> str:
    """What members of one stack share (module docstring), as a canonical string: equal keys may stack."""
    shared = {key: _plain(getattr(config, key)) for key in SHARED}
    shared["optimizer"] = list(optimizer_key(config.optimizer))
    return json.dumps(shared, sort_keys=True, default=str)


def optimizer_key(cfg: Any) -> tuple[str, bool, bool, bool]:
    """What the members of one stack share of their optimizer: ``(name, nesterov, amsgrad, centered)``, a switch
    False where the config has none. Everything else (rates, betas, eps, momentum, weight decay) may differ."""
    nesterov, amsgrad, centered = (bool(getattr(cfg, key, False)) for key in OPTIMIZER_SWITCHES)
    return str(cfg.name), nesterov, amsgrad, centered


def _plain(value: Any) -> Any:
    return asdict(value) if hasattr(value, "__dataclass_fields__") else value


def group_stacks(configs: list[Any], stack_size: int) -> list[list[int]]:
    """Indices of ``configs`` grouped into stacks of at most ``stack_size`` members, in grid order; a run that
    cannot stack (``solo_reason``) is a stack of one. Stacks of one key are filled evenly: 70 runs at
    ``stack_size=64`` make stacks of 35 and 35, not 64 and 6."""
    by_key: dict[str, list[int]] = {}
    stacks: list[list[int]] = []
    for i, config in enumerate(configs):
        if solo_reason(config) is not None or stack_size <= 1:
            stacks.append([i])
        else:
            by_key.setdefault(stack_key(config), []).append(i)
    for members in by_key.values():
        n_stacks = -(-len(members) // stack_size)
        size = -(-len(members) // n_stacks)
        stacks += [members[start : start + size] for start in range(0, len(members), size)]
    return sorted(stacks, key=lambda stack: stack[0])
