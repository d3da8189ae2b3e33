"""Building a run's optimizer from its config (the built-in ``torch.optim`` options and the user's, one path), and
setting/reading its learning rate."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch

from ablate.checks import ConfigError, first_line
from ablate.run.imports import resolve
from ablate.run.optim.config import AdamConfig, CustomOptimizerConfig, MomentumConfig, RMSpropConfig, SGDConfig


def optimizer_class(cfg: Any) -> tuple[Callable[..., torch.optim.Optimizer], dict[str, Any], str]:
    """The optimizer class of an ``optimizer`` config, its keyword arguments besides ``params`` and ``lr``, and
    the key that names it (for messages). Built-in options map to ``torch.optim`` classes; ``custom`` (and a
    ``_target_`` config file) names any ``torch.optim.Optimizer`` subclass."""
    if isinstance(cfg, CustomOptimizerConfig):
        return resolve("optimizer.target", cfg.target), dict(cfg.args), f"optimizer.target={cfg.target}"
    key = f"optimizer={cfg.name}"
    args: dict[str, Any]
    if isinstance(cfg, MomentumConfig):
        args = {"momentum": cfg.momentum, "nesterov": cfg.nesterov, "dampening": cfg.dampening}
        return torch.optim.SGD, {**args, "weight_decay": cfg.weight_decay}, key
    if isinstance(cfg, SGDConfig):
        return torch.optim.SGD, {"momentum": 0.0, "weight_decay": cfg.weight_decay}, key
    if isinstance(cfg, AdamConfig):
        args = {"betas": (cfg.beta1, cfg.beta2), "eps": cfg.eps, "weight_decay": cfg.weight_decay}
        if cfg.name == "radam":
            return torch.optim.RAdam, args, key
        return {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[cfg.name], {**args, "amsgrad": cfg.amsgrad}, key
    if isinstance(cfg, RMSpropConfig):
        args = {"alpha": cfg.alpha, "eps": cfg.eps, "momentum": cfg.momentum, "centered": cfg.centered}
        return torch.optim.RMSprop, {**args, "weight_decay": cfg.weight_decay}, key
    raise TypeError(f"unknown optimizer config {cfg!r}")


def build_optimizer(cfg: Any, params: Iterable[torch.nn.Parameter], lr: float) -> torch.optim.Optimizer:
    """The optimizer of an ``optimizer`` config, at learning rate ``lr``: ``cls(params, lr=lr, **args)``, one path
    for the built-in options and the user's. The trainer overwrites ``lr`` on every param group before each step,
    from the schedule. An error the class raises, or a result that is not a ``torch.optim.Optimizer``, is a
    ConfigError of one line."""
    cls, args, key = optimizer_class(cfg)
    try:
        optimizer = cls(params, lr=lr, **args)
    except Exception as err:
        message = first_line(err)
        name = cfg.target if isinstance(cfg, CustomOptimizerConfig) else cls.__name__
        raise ConfigError(
            f"{key} raised {type(err).__name__} when called as {name}(params, lr={lr:g}, **optimizer.args): {message}"
        ) from None
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise ConfigError(f"{key} returned {type(optimizer).__name__}, not a torch.optim.Optimizer")
    return optimizer


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> float:
    """Set ``lr`` on every param group and return the value read back from the optimizer (first group)."""
    for group in optimizer.param_groups:
        group["lr"] = lr
    return float(optimizer.param_groups[0]["lr"])
