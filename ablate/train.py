"""The one training loop. It reads top to bottom; its pieces are plain functions with explicit inputs."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ablate import metrics as M
from ablate.config import SMOKE_UPDATES, Config
from ablate.data import Dataset, build_dataset
from ablate.data.skew import HeldOut, SkewedBatchSampler, apply_skew, build_sampler
from ablate.models import build_model
from ablate.optim import build_optimizer, set_lr
from ablate.probes import layer_update_ratios, optimizer_params, snapshot
from ablate.probing import Prober
from ablate.runtime import derive_seed, seed_everything
from ablate.schedules import Schedule, build_schedule
from ablate.summary import Summary

LogFn = Callable[[int, dict[str, float]], None]


@dataclass
class Outcome:
    """How a training run ended. ``diverged`` is a result, not an error."""

    status: str  # "completed" or "diverged"
    steps_completed: int
    diverged_step: int | None = None
    divergence_reason: str | None = None
    summary: dict[str, Any] = field(default_factory=dict)


@dataclass
class Parts:
    """Everything a run trains with, built from the config."""

    data: Dataset
    held_out: HeldOut
    model: nn.Module
    optimizer: torch.optim.Optimizer
    schedule: Schedule
    sampler: SkewedBatchSampler
    prober: Prober

    @property
    def params(self) -> list[torch.Tensor]:
        return optimizer_params(self.optimizer)


def build(config: Config, device: torch.device) -> Parts:
    seed_everything(config.seed)
    k = config.skew
    data, held_out = apply_skew(build_dataset(config.data, device), k.name, k.group, k.cue_strength)
    torch.manual_seed(derive_seed(config.seed, "init"))
    model = build_model(config.model, data.n_features, data.n_classes).to(device)
    optimizer = build_optimizer(config.optimizer, model.parameters(), config.lr)
    sampler = build_sampler(data, k.name, k.group, k.steps, k.strength, config.batch_size, config.seed)
    prober = Prober(config, data, held_out.x)
    return Parts(data, held_out, model, optimizer, build_schedule(config), sampler, prober)


def cross_entropy(logits: torch.Tensor, y: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Cross-entropy in nats over every prediction: one per example ``[B, C]``, or per token ``[B, L, V]``."""
    return F.cross_entropy(logits.flatten(0, -2), y.flatten(), reduction=reduction)


def accuracy(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Share of predictions (examples, or tokens) whose largest logit is the target."""
    return (logits.argmax(dim=-1) == y).sum() / y.numel()


@torch.no_grad()
def evaluate(model: nn.Module, held_out: HeldOut) -> dict[str, float]:
    """Held-out cross-entropy (nats) and accuracy, overall and per group, at the current parameters.

    One forward pass over the split; the early (favoured) and rest groups are slices of it. With the
    spurious cue, one more pass over the early group with the cue on a wrong label.
    """
    model.eval()
    logits = model(held_out.x)
    n = len(held_out.y)
    loss = cross_entropy(logits, held_out.y, reduction="none").view(n, -1).mean(dim=1)
    correct = (logits.argmax(dim=-1) == held_out.y).float().view(n, -1).mean(dim=1)
    early, rest = held_out.early, ~held_out.early
    names = [M.EVAL_LOSS, M.EVAL_ACC, M.EVAL_EARLY_LOSS, M.EVAL_EARLY_ACC, M.EVAL_REST_LOSS, M.EVAL_REST_ACC]
    values = [
        loss.mean(),
        correct.mean(),
        loss[early].mean(),
        correct[early].mean(),
        loss[rest].mean(),
        correct[rest].mean(),
    ]
    if held_out.cue_flipped_x is not None and held_out.cue_flipped_y is not None:
        flipped = model(held_out.cue_flipped_x)
        names += [M.EVAL_CUE_FLIPPED_LOSS, M.EVAL_CUE_FLIPPED_ACC]
        values += [cross_entropy(flipped, held_out.cue_flipped_y), accuracy(flipped, held_out.cue_flipped_y)]
    model.train()
    return dict(zip(names, torch.stack(values).tolist(), strict=True))


def model_loss(parts: Parts) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """The training loss of ``parts.model`` on a batch, as a closure for the probes."""
    return lambda x, y: cross_entropy(parts.model(x), y)


def global_norm(tensors: list[torch.Tensor]) -> torch.Tensor:
    """``sqrt(sum_i ||x_i||^2)`` over a list of tensors."""
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(tensors)))


def train_step(parts: Parts, step: int, measure: bool, layer_ratios: bool = False) -> dict[str, float]:
    """One update ``theta_t -> theta_{t+1}`` at the scheduled rate; returns its metrics.

    ``measure`` adds ``train/acc``, ``opt/grad_norm`` and ``opt/update_ratio``. Together they cost about a
    quarter of a default MLP step on a CPU (the ratio needs a copy of the parameters), so by default they are
    measured every ``metrics_every`` steps; ``train/loss`` and ``opt/lr`` are logged at every step.
    ``layer_ratios`` adds the per-layer update-to-weight ratios (``probe/update_ratio/<parameter>``).
    """
    lr = set_lr(parts.optimizer, parts.schedule(step))
    idx = parts.sampler.batch(step)
    x, y = parts.data.train_x[idx], parts.data.train_y[idx]
    logits = parts.model(x)
    loss = cross_entropy(logits, y)
    parts.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    row = {M.TRAIN_LOSS: loss.item(), M.LR: lr}
    named_before = snapshot(parts.model) if layer_ratios else None
    if measure:
        params = parts.params
        row[M.TRAIN_ACC] = accuracy(logits.detach(), y).item()
        row[M.GRAD_NORM] = global_norm([p.grad for p in params if p.grad is not None]).item()
        before = [p.detach().clone() for p in params]
    parts.optimizer.step()
    if measure:
        with torch.no_grad():
            change = list(torch._foreach_sub(params, before))
            row[M.UPDATE_RATIO] = (global_norm(change) / global_norm(before)).item()
    if named_before is not None:
        row.update(layer_update_ratios(named_before, parts.model))
    return row


def divergence(loss: float, first_loss: float, factor: float) -> str | None:
    """Why the loss counts as diverged, or None: non-finite, or above ``factor`` times the first loss."""
    if not math.isfinite(loss):
        return f"non-finite train loss ({loss})"
    if loss > factor * first_loss:
        return f"train loss {loss:.4g} > diverge_factor {factor:g} x first loss {first_loss:.4g}"
    return None


def train(config: Config, device: torch.device, log: LogFn) -> Outcome:
    """Build the run's parts and train for ``config.steps`` updates (see ``run_loop``)."""
    return run_loop(config, build(config, device), log)


def run_loop(config: Config, parts: Parts, log: LogFn) -> Outcome:
    """Train ``parts`` for ``config.steps`` updates, handing every step's metrics to ``log(step, metrics)``."""
    summary = Summary(config.eval_every, config.skew.steps, config.skew.recovery_tolerance)
    updates = min(config.steps, SMOKE_UPDATES) if config.smoke else config.steps  # the schedule still spans steps
    for step in range(updates):
        if step == config.fail_at_step:
            raise RuntimeError(f"fail_at_step={step}: deliberate failure to test failure handling")
        held_out = evaluate(parts.model, parts.held_out) if step % config.eval_every == 0 else None
        probed: dict[str, float] = {}
        if parts.prober.any_due(step):
            tic = time.perf_counter()
            probed = parts.prober.before_update(
                step, parts.model, parts.optimizer, parts.schedule(step), model_loss(parts)
            )
            probed[M.PROBE_TIME] = time.perf_counter() - tic
        tic = time.perf_counter()
        row = train_step(parts, step, step % config.metrics_every == 0, parts.prober.wants_update_ratios(step))
        row[M.STEP_TIME] = time.perf_counter() - tic
        row.update(probed)
        if held_out is not None:
            summary.add_eval(step, held_out)  # before add_train: its train window holds updates < step
            row.update(held_out)
        summary.add_train(row[M.TRAIN_LOSS])
        log(step, row)
        reason = divergence(row[M.TRAIN_LOSS], summary.first_train_loss, config.diverge_factor)
        if reason is not None:
            return Outcome("diverged", step + 1, step, reason, summary.result(final=None))
    final = evaluate(parts.model, parts.held_out)
    summary.add_eval(updates, final)
    log(updates, final)
    if not math.isfinite(final[M.EVAL_LOSS]):  # the last update broke the parameters
        reason = f"non-finite held-out loss after the last update ({final[M.EVAL_LOSS]})"
        return Outcome("diverged", updates, updates, reason, summary.result(final=None))
    return Outcome("completed", updates, summary=summary.result(final=final))
