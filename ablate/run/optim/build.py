"""Building the real ``torch.optim`` optimizers from config, and setting/reading their learning rate."""

from __future__ import annotations

from collections.abc import Iterable

import torch

from ablate.checks import ConfigError
from ablate.run.imports import resolve
from ablate.run.optim.config import AdamConfig, CustomOptimizerConfig, MomentumConfig, RMSpropConfig, SGDConfig


def build_optimizer(cfg: object, params: Iterable[torch.nn.Parameter], lr: float) -> torch.optim.Optimizer:
    """The optimizer for an ``optimizer`` config group option, at learning rate ``lr``.

    The trainer overwrites ``lr`` on every param group before each step, from the schedule.
    A custom optimizer (``optimizer.target``) is called as ``target(params, lr=lr, **args)`` and must return a
    ``torch.optim.Optimizer``.
    """
    if isinstance(cfg, CustomOptimizerConfig):
        return build_custom(cfg, params, lr)
    if isinstance(cfg, MomentumConfig):
        return torch.optim.SGD(
            params,
            lr=lr,
            momentum=cfg.momentum,
            nesterov=cfg.nesterov,
            dampening=cfg.dampening,
            weight_decay=cfg.weight_decay,
        )
    if isinstance(cfg, SGDConfig):
        return torch.optim.SGD(params, lr=lr, momentum=0.0, weight_decay=cfg.weight_decay)
    if isinstance(cfg, AdamConfig):
        betas = (cfg.beta1, cfg.beta2)
        if cfg.name == "adam":
            return torch.optim.Adam(
                params, lr=lr, betas=betas, eps=cfg.eps, weight_decay=cfg.weight_decay, amsgrad=cfg.amsgrad
            )
        if cfg.name == "adamw":
            return torch.optim.AdamW(
                params, lr=lr, betas=betas, eps=cfg.eps, weight_decay=cfg.weight_decay, amsgrad=cfg.amsgrad
            )
        if cfg.name == "radam":
            return torch.optim.RAdam(params, lr=lr, betas=betas, eps=cfg.eps, weight_decay=cfg.weight_decay)
    if isinstance(cfg, RMSpropConfig):
        return torch.optim.RMSprop(
            params,
            lr=lr,
            alpha=cfg.alpha,
            eps=cfg.eps,
            momentum=cfg.momentum,
            centered=cfg.centered,
            weight_decay=cfg.weight_decay,
        )
    raise TypeError(f"unknown optimizer config {cfg!r}")


def build_custom(cfg: CustomOptimizerConfig, params: Iterable[torch.nn.Parameter], lr: float) -> torch.optim.Optimizer:
    key = f"optimizer.target={cfg.target}"
    factory = resolve("optimizer.target", cfg.target)
    try:
        optimizer = factory(params, lr=lr, **cfg.args)
    except Exception as err:
        message = str(err).strip().splitlines()[0] if str(err).strip() else ""
        raise ConfigError(
            f"{key} raised {type(err).__name__} when called as {cfg.target}(params, lr={lr:g}, "
            f"**optimizer.args): {message}"
        ) from None
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise ConfigError(f"{key} returned {type(optimizer).__name__}, not a torch.optim.Optimizer")
    return optimizer


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> float:
    """Set ``lr`` on every param group and return the value read back from the optimizer (first group)."""
    for group in optimizer.param_groups:
        group["lr"] = lr
    return float(optimizer.param_groups[0]["lr"])
