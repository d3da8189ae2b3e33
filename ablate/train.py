"""The one training loop. It reads top to bottom; its pieces are plain functions with explicit inputs."""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ablate import metrics as M
from ablate.config import Config
from ablate.data import Dataset, IIDBatchSampler, build_dataset
from ablate.models import build_model
from ablate.optim import build_optimizer, set_lr
from ablate.runtime import derive_seed, finite_or_none, seed_everything
from ablate.schedules import Schedule, build_schedule

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
    model: nn.Module
    optimizer: torch.optim.Optimizer
    schedule: Schedule
    sampler: IIDBatchSampler

    @property
    def params(self) -> list[torch.Tensor]:
        return [p for group in self.optimizer.param_groups for p in group["params"]]


def build(config: Config, device: torch.device) -> Parts:
    seed_everything(config.seed)
    data = build_dataset(config.data, device)
    torch.manual_seed(derive_seed(config.seed, "init"))
    model = build_model(config.model, data.n_features, data.n_classes).to(device)
    optimizer = build_optimizer(config.optimizer, model.parameters(), config.lr)
    sampler = IIDBatchSampler(data.n_train, config.batch_size, config.seed, device)
    return Parts(data, model, optimizer, build_schedule(config), sampler)


def accuracy(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Share of rows whose largest logit is the label."""
    return (logits.argmax(dim=1) == y).sum() / len(y)


@torch.no_grad()
def evaluate(model: nn.Module, data: Dataset) -> dict[str, float]:
    """Mean cross-entropy (nats) and accuracy on the whole held-out split, at the current parameters."""
    model.eval()
    logits = model(data.eval_x)
    model.train()
    return {M.EVAL_LOSS: F.cross_entropy(logits, data.eval_y).item(), M.EVAL_ACC: accuracy(logits, data.eval_y).item()}


def global_norm(tensors: list[torch.Tensor]) -> torch.Tensor:
    """``sqrt(sum_i ||x_i||^2)`` over a list of tensors."""
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(tensors)))


def train_step(parts: Parts, step: int, measure: bool) -> dict[str, float]:
    """One update ``theta_t -> theta_{t+1}`` at the scheduled rate; returns its metrics.

    ``measure`` adds ``train/acc``, ``opt/grad_norm`` and ``opt/update_ratio``. Together they cost about a
    quarter of a default MLP step on a CPU (the ratio needs a copy of the parameters), so by default they are
    measured every ``metrics_every`` steps; ``train/loss`` and ``opt/lr`` are logged at every step.
    """
    lr = set_lr(parts.optimizer, parts.schedule(step))
    idx = parts.sampler.batch(step)
    x, y = parts.data.train_x[idx], parts.data.train_y[idx]
    logits = parts.model(x)
    loss = F.cross_entropy(logits, y)
    parts.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if not measure:
        parts.optimizer.step()
        return {M.TRAIN_LOSS: loss.item(), M.LR: lr}
    params = parts.params
    row = {M.TRAIN_LOSS: loss.item(), M.TRAIN_ACC: accuracy(logits.detach(), y).item(), M.LR: lr}
    row[M.GRAD_NORM] = global_norm([p.grad for p in params if p.grad is not None]).item()
    before = [p.detach().clone() for p in params]
    parts.optimizer.step()
    with torch.no_grad():
        change = list(torch._foreach_sub(params, before))
        row[M.UPDATE_RATIO] = (global_norm(change) / global_norm(before)).item()
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
    summary = Summary(window_steps=config.eval_every)
    for step in range(config.steps):
        if step == config.fail_at_step:
            raise RuntimeError(f"fail_at_step={step}: deliberate failure to test failure handling")
        held_out = evaluate(parts.model, parts.data) if step % config.eval_every == 0 else None
        tic = time.perf_counter()
        row = train_step(parts, step, measure=step % config.metrics_every == 0)
        row[M.STEP_TIME] = time.perf_counter() - tic
        summary.add_train(row[M.TRAIN_LOSS])
        if held_out is not None:
            summary.add_eval(step, held_out)
            row.update(held_out)
        log(step, row)
        reason = divergence(row[M.TRAIN_LOSS], summary.first_train_loss, config.diverge_factor)
        if reason is not None:
            return Outcome("diverged", step + 1, step, reason, summary.result(final=None))
    final = evaluate(parts.model, parts.data)
    summary.add_eval(config.steps, final)
    log(config.steps, final)
    return Outcome("completed", config.steps, summary=summary.result(final=final))


class Summary:
    """Final and best held-out metrics, and the mean train loss over the last ``window_steps`` updates."""

    def __init__(self, window_steps: int) -> None:
        self.best: dict[str, tuple[float, int]] = {}
        self.train_losses: deque[float] = deque(maxlen=window_steps)
        self.first_train_loss = math.nan

    def add_train(self, loss: float) -> None:
        if not self.train_losses and math.isnan(self.first_train_loss):
            self.first_train_loss = loss
        self.train_losses.append(loss)

    def add_eval(self, step: int, held_out: dict[str, float]) -> None:
        for key, sign in ((M.EVAL_LOSS, 1.0), (M.EVAL_ACC, -1.0)):  # lower loss, higher accuracy is better
            value = held_out[key]
            old = self.best.get(key)
            if math.isfinite(value) and (old is None or sign * value < sign * old[0]):
                self.best[key] = (value, step)

    def result(self, final: dict[str, float] | None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "final_eval_loss": final[M.EVAL_LOSS] if final else None,
            "final_eval_acc": final[M.EVAL_ACC] if final else None,
        }
        for key, name in ((M.EVAL_LOSS, "eval_loss"), (M.EVAL_ACC, "eval_acc")):
            value, step = self.best.get(key, (None, None))
            out[f"best_{name}"], out[f"best_{name}_step"] = value, step
        out["first_train_loss"] = finite_or_none(self.first_train_loss)
        finite = [x for x in self.train_losses if math.isfinite(x)]
        out["final_train_loss"] = sum(finite) / len(finite) if final and finite else None
        return out
