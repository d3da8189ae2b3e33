"""Schemas of the ``optimizer`` config group and the checks of their own fields.

``lr`` itself is a top-level key (``ablate.config.Config``): its default is ``default_lr x lr_scale``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ablate.checks import check, check_target, check_user_part, described, is_finite

_TUNED = "peak rate tuned at warmup=0 by sweeps/lr-tuning.yaml (python -m analysis.tune --write)"
_EXAMPLES = {"beta1": 0.9, "beta2": 0.999, "alpha": 0.99, "momentum": 0.9}


def _check_rates(o: Any) -> None:
    """``default_lr`` and ``tuned_lr`` are finite rates > 0: ``lr`` is computed from them unless given, so the
    input that is wrong is named before the product."""
    for key in ("default_lr", "tuned_lr"):
        value = getattr(o, key)
        check(
            is_finite(value) and value > 0,
            f"optimizer.{key}={value} is not allowed: it must be a finite learning rate > 0; e.g. optimizer.{key}=1e-3",
        )


def _check_common(o: Any) -> None:
    """Checks every built-in optimizer schema shares: its rates, decay coefficients in [0, 1), eps and weight
    decay."""
    _check_rates(o)
    for key in ("beta1", "beta2", "alpha", "momentum"):
        if hasattr(o, key):
            value = getattr(o, key)
            check(
                0.0 <= value < 1.0,
                f"optimizer.{key}={value} is not allowed: it must be in [0, 1), e.g. optimizer.{key}={_EXAMPLES[key]}",
            )
    if hasattr(o, "eps"):
        check(
            is_finite(o.eps) and o.eps > 0,
            f"optimizer.eps={o.eps} is not allowed: it must be a finite number > 0, e.g. 1e-8",
        )
    check(
        is_finite(o.weight_decay) and o.weight_decay >= 0,
        f"optimizer.weight_decay={o.weight_decay} is not allowed: it must be a finite number >= 0, "
        "e.g. optimizer.weight_decay=0.01",
    )


@dataclass
class SGDConfig:
    name: str = described("optimizer")
    default_lr: float = described("peak learning rate used when `lr` is not given")
    tuned_lr: float = described(_TUNED)
    weight_decay: float = described("L2 penalty added to the gradient")

    def check(self) -> None:
        _check_common(self)


@dataclass
class MomentumConfig:
    name: str = described("optimizer")
    default_lr: float = described("peak learning rate used when `lr` is not given")
    tuned_lr: float = described(_TUNED)
    momentum: float = described("momentum coefficient")
    nesterov: bool = described("use Nesterov momentum")
    dampening: float = described("dampening of the momentum buffer (must be 0 with nesterov)")
    weight_decay: float = described("L2 penalty added to the gradient")

    def check(self) -> None:
        _check_common(self)
        check(
            0.0 <= self.dampening <= 1.0,
            f"optimizer.dampening={self.dampening} is not allowed: it must be in [0, 1], e.g. optimizer.dampening=0",
        )
        check(
            not self.nesterov or self.dampening == 0,
            f"optimizer.dampening={self.dampening} is not allowed with nesterov=true: set optimizer.dampening=0",
        )


@dataclass
class AdamConfig:
    name: str = described("optimizer (adam, adamw or radam share this schema)")
    default_lr: float = described("peak learning rate used when `lr` is not given")
    tuned_lr: float = described(_TUNED)
    beta1: float = described("decay of the first-moment estimate")
    beta2: float = described("decay of the second-moment estimate; warmup=auto uses ceil(2/(1-beta2))")
    eps: float = described("added to sqrt(v_hat) in the denominator")
    weight_decay: float = described("L2 penalty (adam, radam) or decoupled decay (adamw)")
    amsgrad: bool = described("use the AMSGrad maximum of v (adam and adamw only)")

    def check(self) -> None:
        _check_common(self)
        if self.name == "radam":
            check(not self.amsgrad, "optimizer.amsgrad=true is not allowed with optimizer=radam: set amsgrad=false")


@dataclass
class RMSpropConfig:
    name: str = described("optimizer")
    default_lr: float = described("peak learning rate used when `lr` is not given")
    tuned_lr: float = described(_TUNED)
    alpha: float = described("decay of the squared-gradient average (plays the role of beta2 for warmup=auto)")
    eps: float = described("added to the denominator")
    momentum: float = described("momentum coefficient")
    centered: bool = described("divide by the variance estimate instead of the raw second moment")
    weight_decay: float = described("L2 penalty added to the gradient")

    def check(self) -> None:
        _check_common(self)


OPTIMIZERS: dict[str, type] = {
    "sgd": SGDConfig,
    "momentum": MomentumConfig,
    "adam": AdamConfig,
    "adamw": AdamConfig,
    "radam": AdamConfig,
    "rmsprop": RMSpropConfig,
}
"""Option of the ``optimizer`` group -> its schema."""


def second_moment_decay(optimizer: Any) -> float | None:
    """The optimizer's second-moment decay (Adam's beta2, RMSProp's alpha), or None if it has none."""
    if isinstance(optimizer, AdamConfig):
        return optimizer.beta2
    if isinstance(optimizer, RMSpropConfig):
        return optimizer.alpha
    if isinstance(optimizer, CustomOptimizerConfig):
        return custom_second_moment_decay(optimizer)[0]
    return None


@dataclass
class CustomOptimizerConfig:
    """The user's optimizer by import path: ``optimizer=custom optimizer.target=torch.optim.Adagrad``, or a config
    file ``conf/optimizer/<name>.yaml`` with ``_target_`` and the keyword arguments beside it (plus ``default_lr``)."""

    name: str = described("the optimizer's name in run labels and W&B (custom, or the name its config file gives)")
    target: str = described("import path of a torch.optim.Optimizer subclass, called as target(params, lr=lr, **args)")
    args: dict[str, Any] = field(
        default_factory=dict, metadata={"help": "keyword arguments besides params and lr (betas, eps, ...)"}
    )
    default_lr: float = described("peak learning rate used when `lr` is not given")
    tuned_lr: float = described(_TUNED)

    def check(self) -> None:
        check_target("optimizer.target", self.target, "torch.optim.Adagrad")
        check_user_part("optimizer", self.name, self.args)
        _check_rates(self)
        for key in ("lr", "params"):
            check(
                key not in self.args,
                f"optimizer.args={dict(self.args)} is not allowed: it holds {key}, which ablate passes itself (the "
                "parameters, and each step's rate from the schedule); give the peak rate as lr=<rate>",
            )


OPTIMIZERS["custom"] = CustomOptimizerConfig


def custom_second_moment_decay(o: CustomOptimizerConfig) -> tuple[float | None, str]:
    """A user optimizer's second-moment decay and where it was read: ``args.betas[1]``, ``args.beta2`` or
    ``args.alpha``, else the same names' defaults in the optimizer's signature (imports the target)."""
    from ablate.run.imports import resolve

    betas = o.args.get("betas")
    if isinstance(betas, list | tuple) and len(betas) == 2:
        return float(betas[1]), "optimizer.args.betas[1]"
    for key in ("beta2", "alpha"):
        if key in o.args:
            return float(o.args[key]), f"optimizer.args.{key}"
    import inspect

    try:
        params = inspect.signature(resolve("optimizer.target", o.target)).parameters
    except (TypeError, ValueError):
        return None, ""
    default = params["betas"].default if "betas" in params else None
    if isinstance(default, tuple) and len(default) == 2:
        return float(default[1]), f"{o.target}'s default betas[1]"
    for key in ("beta2", "alpha"):
        if key in params and isinstance(params[key].default, float):
            return float(params[key].default), f"{o.target}'s default {key}"
    return None, ""
