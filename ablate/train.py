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
from ablate.config import Config
from ablate.data import Dataset, IIDBatchSampler, build_dataset
from ablate.models import build_model
from ablate.optim import build_optimizer, set_lr
from ablate.runtime import derive_seed, seed_everything
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
    fifth of a default MLP step on a CPU (the ratio needs a copy of the parameters), so by default they are
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
    with torch.no_grad():
        row = {M.TRAIN_LOSS: loss.item(), M.TRAIN_ACC: accuracy(logits, y).item(), M.LR: lr}
        row[M.GRAD_NORM] = global_norm([p.grad for p in params if p.grad is not None]).item()
        before = [p.detach().clone() for p in params]
        parts.optimizer.step()
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
    first_loss = math.nan
    for step in range(config.steps):
        if step == config.fail_at_step:
            raise RuntimeError(f"fail_at_step={step}: deliberate failure to test failure handling")
        row: dict[str, float] = {}
        if step % config.eval_every == 0:
            row.update(evaluate(parts.model, parts.data))
        tic = time.perf_counter()
        row.update(train_step(parts, step, measure=step % config.metrics_every == 0))
        row[M.STEP_TIME] = time.perf_counter() - tic
        if step == 0:
            first_loss = row[M.TRAIN_LOSS]
        reason = divergence(row[M.TRAIN_LOSS], first_loss, config.diverge_factor)
        summary.add(step, row)
        log(step, row)
        if reason is not None:
            return Outcome("diverged", step + 1, step, reason, summary.result(final=None))
    final = evaluate(parts.model, parts.data)
    summary.add(config.steps, final)
    log(config.steps, final)
    return Outcome("completed", config.steps, summary=summary.result(final=final))


class Summary:
    """Final and best held-out metrics, and the mean train loss over the last ``window_steps`` updates."""

    def __init__(self, window_steps: int) -> None:
        self.window_steps = window_steps
        self.best: dict[str, tuple[float, int]] = {}
        self.train_losses: list[float] = []
        self.first_train_loss: float | None = None

    def add(self, step: int, row: dict[str, float]) -> None:
        for key, sign in ((M.EVAL_LOSS, 1.0), (M.EVAL_ACC, -1.0)):  # lower loss, higher accuracy is better
            if key in row and math.isfinite(row[key]):
                old = self.best.get(key)
                if old is None or sign * row[key] < sign * old[0]:
                    self.best[key] = (row[key], step)
        if M.TRAIN_LOSS in row:
            if self.first_train_loss is None:
                self.first_train_loss = row[M.TRAIN_LOSS]
            self.train_losses.append(row[M.TRAIN_LOSS])
            del self.train_losses[: -self.window_steps]

    def result(self, final: dict[str, float] | None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "final_eval_loss": final[M.EVAL_LOSS] if final else None,
            "final_eval_acc": final[M.EVAL_ACC] if final else None,
        }
        for key, name in ((M.EVAL_LOSS, "eval_loss"), (M.EVAL_ACC, "eval_acc")):
            value, step = self.best.get(key, (None, None))
            out[f"best_{name}"], out[f"best_{name}_step"] = value, step
        out["first_train_loss"] = self.first_train_loss
        finite = [x for x in self.train_losses if math.isfinite(x)]
        out["final_train_loss"] = sum(finite) / len(finite) if final and finite else None
        return out
