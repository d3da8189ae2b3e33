"""Lion (Chen et al. 2023, "Symbolic Discovery of Optimization Algorithms"), a torch.optim.Optimizer.

Update: ``c = beta1 m + (1 - beta1) g``; ``theta -= lr (sign(c) + wd theta)``; ``m = beta2 m + (1 - beta2) g``.
It keeps no second moment, so ablate's second-moment probes skip it and say why; ``warmup=auto`` reads
``betas[1]`` (the momentum decay) as the rule's beta2.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch


class Lion(torch.optim.Optimizer):
    def __init__(
        self,
        params: Iterable[torch.nn.Parameter],
        lr: float = 1e-4,
        betas: tuple[float, float] = (0.9, 0.99),
        weight_decay: float = 0.0,
    ) -> None:
        if lr <= 0 or not all(0.0 <= b < 1.0 for b in betas):
            raise ValueError(f"Lion needs lr > 0 and betas in [0, 1), got lr={lr}, betas={betas}")
        super().__init__(params, {"lr": lr, "betas": tuple(betas), "weight_decay": weight_decay})

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["exp_avg"] = torch.zeros_like(p)
                m = state["exp_avg"]
                update = (beta1 * m + (1 - beta1) * p.grad).sign_()
                p.add_(update + group["weight_decay"] * p, alpha=-group["lr"])
                m.mul_(beta2).add_(p.grad, alpha=1 - beta2)
        return loss
