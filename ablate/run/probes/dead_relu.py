"""Dead ReLU units: the share of each ``nn.ReLU``'s units that output 0 for every example of a batch."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

DEAD_RELU = "probe/dead_relu"  # share of all ReLU units dead on the batch; + "/<module name>" per module


def dead_relu_share(model: nn.Module, x: torch.Tensor) -> dict[str, float]:
    """Share of each ``nn.ReLU`` module's units that output 0 for every example of the batch ``x``.

    A unit is one coordinate of the module's output apart from the leading batch dimension. Keys
    ``probe/dead_relu/<module name>`` (``named_modules`` name) and ``probe/dead_relu`` (dead units over all
    ReLU units). A module applied twice counts both applications' units; one not applied, and functional
    ``F.relu``, are not seen; ``{}`` when the model applies no ``nn.ReLU``. The forward runs under
    ``no_grad`` in the model's current mode (a BatchNorm in train mode would update its running statistics);
    the hooks are removed afterwards. Cost: one forward pass.
    """
    if len(x) == 0:
        raise ValueError("dead_relu_share needs a non-empty batch")
    counts: dict[str, list[torch.Tensor]] = {}

    def hook_for(name: str) -> Callable[[nn.Module, object, torch.Tensor], None]:
        def hook(module: nn.Module, inputs: object, output: torch.Tensor) -> None:
            dead = (output.reshape(output.shape[0], -1) == 0).all(dim=0)
            counts.setdefault(name, []).append(torch.stack([dead.sum(), torch.tensor(dead.numel()).to(dead.device)]))

        return hook

    handles = [m.register_forward_hook(hook_for(name)) for name, m in model.named_modules() if isinstance(m, nn.ReLU)]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for handle in handles:
            handle.remove()
    if not counts:
        return {}
    per_module = {name: torch.stack(calls).sum(dim=0) for name, calls in counts.items()}
    values = torch.stack([c.to(x.device) for c in per_module.values()]).tolist()
    out = {f"{DEAD_RELU}/{name}": dead / units for name, (dead, units) in zip(per_module, values, strict=True)}
    out[DEAD_RELU] = sum(dead for dead, _ in values) / sum(units for _, units in values)
    return out
