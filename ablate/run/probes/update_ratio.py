"""Update-to-weight ratios per parameter tensor: how far one optimizer step moves each layer, relative to
its size. See the package docstring for the probes' contract."""

from __future__ import annotations

import math

import torch
from torch import nn

UPDATE_RATIO = "probe/update_ratio"  # + "/<param name>": ||p_after - p_before|| / ||p_before||


def optimizer_params(optimizer: torch.optim.Optimizer) -> list[torch.Tensor]:
    """The optimizer's parameters in ``param_groups`` order: the order of every per-parameter list here."""
    return [p for group in optimizer.param_groups for p in group["params"]]


def snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    """Detached copies of the parameters by ``named_parameters`` name; take it just before ``optimizer.step()``."""
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def layer_update_ratios(named_before: dict[str, torch.Tensor], model: nn.Module) -> dict[str, float]:
    """``||p_after - p_before|| / ||p_before||`` for every parameter tensor, keyed ``probe/update_ratio/<name>``.

    ``named_before`` is ``snapshot(model)`` from before the update; ``model`` holds the parameters after it.
    A tensor that did not move has ratio 0; one that moved away from all zeros has ratio ``inf``.
    Cost: no forward or backward pass; one subtraction and two norms per tensor, one device sync.
    """
    named_after = dict(model.named_parameters())
    if named_after.keys() != named_before.keys():
        missing = sorted(named_after.keys() ^ named_before.keys())
        raise ValueError(f"named_before does not match the model's parameters: {missing} differ")
    if not named_after:
        return {}
    device = next(iter(named_after.values())).device
    with torch.no_grad():
        norms = [
            torch.stack(
                [
                    torch.linalg.vector_norm(p.detach() - named_before[name], dtype=torch.float64),
                    torch.linalg.vector_norm(named_before[name], dtype=torch.float64),
                ]
            ).to(device)
            for name, p in named_after.items()
        ]
        values = torch.stack(norms).tolist()
    out = {}
    for name, (change, before) in zip(named_after, values, strict=True):
        out[f"{UPDATE_RATIO}/{name}"] = 0.0 if change == 0.0 else (change / before if before > 0 else math.inf)
    return out
