"""The one training loop. It reads top to bottom; its pieces are plain functions with explicit inputs."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel

from ablate.config import SMOKE_UPDATES, Config, resolve_batch_size
from ablate.run import metrics as M
from ablate.run.data.build import build_dataset
from ablate.run.data.dataset import Dataset
from ablate.run.data.skew import HeldOut, SkewedBatchSampler, apply_skew, build_sampler
from ablate.run.imports import resolve
from ablate.run.models.build import build_model
from ablate.run.objective import CLASSIFICATION, Chance, Objective
from ablate.run.optim.build import build_optimizer, set_lr
from ablate.run.outcome import DivergenceRule, classify
from ablate.run.probes.prober import Prober
from ablate.run.probes.sharpness import top_hessian_eigenvalue
from ablate.run.probes.update_ratio import layer_update_ratios, optimizer_params, snapshot
from ablate.run.runtime import derive_seed, seed_everything
from ablate.run.schedules import Schedule, build_schedule
from ablate.run.summary import Summary
from ablate.run.workload import spec_of

LogFn = Callable[[int, dict[str, float]], None]
CLASSIFY = Objective(CLASSIFICATION)


@dataclass
class Outcome:
    """How a training run ended. ``diverged`` is a result, not an error."""

    status: str  # "completed" or "diverged"
    outcome: str | None  # "trained", "untrained" or "diverged" (ablate.run.outcome)
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
    objective: Objective  # the loss and metrics: the data's task kind's, or the user's loss
    chance: Chance  # the held-out loss (and accuracy) of predicting without looking at the input
    skew_train_x: torch.Tensor | None = None  # training inputs during the skew phase, when they differ
    skew_steps: int = 0
    peak_lr: float = math.nan  # the peak rate p the schedule was built with (config.lr, or from the sharpness)
    sharpness_at_init: float | None = None  # measured for lr_sharpness_multiple

    @property
    def params(self) -> list[torch.Tensor]:
        return optimizer_params(self.optimizer)


def build(config: Config, device: torch.device, dataset: Dataset | None = None) -> Parts:
    """The run's parts. ``dataset``: the data config's dataset when the caller has it already (a stack builds it
    once for its members; built-in datasets depend on ``data.seed`` only, never on the run's seed)."""
    seed_everything(config.seed)
    k = config.skew
    dataset = build_dataset(config.data, device) if dataset is None else dataset
    skewed = apply_skew(dataset, k.name, k.group, k.cue_strength, k.cue_after, config.seed)
    data, held_out = skewed.data, skewed.held_out
    torch.manual_seed(derive_seed(config.seed, "init"))
    model = build_model(config.model, spec_of(data)).to(device)
    prober = Prober(config, data, held_out.x)
    obj = Objective(data.task, None if config.loss == "auto" else resolve("loss", config.loss))
    sharpness_at_init = None
    if config.lr_sharpness_multiple is not None:  # the peak rate is c x 2 / sharpness at init
        sharpness_at_init = measure_sharpness(model, data, obj, prober.sharpness_idx, config.probes.sharpness_iters)
        if not sharpness_at_init > 0:
            raise ValueError(f"lr_sharpness_multiple needs a positive sharpness at init, measured {sharpness_at_init}")
        config = replace(config, lr=config.lr_sharpness_multiple * 2.0 / sharpness_at_init)
    optimizer = build_optimizer(config.optimizer, model.parameters(), config.lr)
    sampler = build_sampler(
        data, k.name, k.group, k.steps, k.strength, resolve_batch_size(config, data.n_train), config.seed
    )
    chance = obj.chance(data.train_y, data.eval_y, data.n_classes)
    schedule = build_schedule(config)
    return Parts(
        data=data,
        held_out=held_out,
        model=model,
        optimizer=optimizer,
        schedule=schedule,
        sampler=sampler,
        prober=prober,
        objective=obj,
        chance=chance,
        skew_train_x=skewed.skew_train_x,
        skew_steps=k.steps,
        peak_lr=config.lr,
        sharpness_at_init=sharpness_at_init,
    )


def measure_sharpness(model: nn.Module, data: Dataset, obj: Objective, idx: torch.Tensor, iters: int) -> float:
    """Top Hessian eigenvalue of the training loss on the examples ``idx`` (the sharpness probe's fixed batch)."""
    x, y = data.train_x[idx], data.train_y[idx]
    params: list[torch.Tensor] = [p for p in model.parameters() if p.requires_grad]
    with sdpa_kernel(SDPBackend.MATH):  # Hessian-vector products need double backward
        return top_hessian_eigenvalue(lambda: obj.loss(model(x), y), params, iters)


@torch.no_grad()
def evaluate(model: nn.Module, held_out: HeldOut, obj: Objective = CLASSIFY) -> dict[str, float]:
    """Held-out loss (cross-entropy in nats, or MSE) and accuracy (classification), overall and per group.

    One forward pass over the split; the early (favoured) and rest groups are slices of it. With the
    spurious cue, one more pass over the early group with the cue on a wrong label.
    """
    model.eval()
    output = model(held_out.x)
    flipped = model(held_out.cue_flipped_x) if held_out.cue_flipped_x is not None else None
    model.train()
    return held_out_metrics(output, flipped, held_out, obj)


def held_out_metrics(
    output: torch.Tensor, flipped: torch.Tensor | None, held_out: HeldOut, obj: Objective
) -> dict[str, float]:
    """``evaluate``'s metrics from the model's ``output`` on the held-out split (and ``flipped``, its output on the
    early group with the cue on a wrong label); the stacked loop computes them per member from the same code."""
    loss = obj.per_example_loss(output, held_out.y)
    correct = obj.per_example_correct(output, held_out.y)
    early, rest = held_out.early, ~held_out.early
    names = [M.EVAL_LOSS, M.EVAL_EARLY_LOSS, M.EVAL_REST_LOSS]
    values = [loss.mean(), loss[early].mean(), loss[rest].mean()]
    if correct is not None:
        names += [M.EVAL_ACC, M.EVAL_EARLY_ACC, M.EVAL_REST_ACC]
        values += [correct.mean(), correct[early].mean(), correct[rest].mean()]
    if flipped is not None and held_out.cue_flipped_y is not None:
        flipped_acc = obj.accuracy(flipped, held_out.cue_flipped_y)
        assert flipped_acc is not None  # the cue exists for classification only
        names += [M.EVAL_CUE_FLIPPED_LOSS, M.EVAL_CUE_FLIPPED_ACC]
        values += [obj.loss(flipped, held_out.cue_flipped_y), flipped_acc]
    return dict(zip(names, torch.stack(values).tolist(), strict=True))


def model_loss(parts: Parts) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """The training loss of ``parts.model`` on a batch, as a closure for the probes."""
    return lambda x, y: parts.objective.loss(parts.model(x), y)


def train_inputs(parts: Parts, step: int) -> torch.Tensor:
    """The training inputs of update ``step``: the skew phase's own (a transient cue) or the dataset's."""
    if parts.skew_train_x is not None and step < parts.skew_steps:
        return parts.skew_train_x
    return parts.data.train_x


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
    x, y = train_inputs(parts, step)[idx], parts.data.train_y[idx]
    output = parts.model(x)
    loss = parts.objective.loss(output, y)
    parts.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    row = {M.TRAIN_LOSS: loss.item(), M.LR: lr}
    named_before = snapshot(parts.model) if layer_ratios else None
    if measure:
        params = parts.params
        acc = parts.objective.accuracy(output.detach(), y)
        if acc is not None:
            row[M.TRAIN_ACC] = acc.item()
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


def train(config: Config, device: torch.device, log: LogFn) -> Outcome:
    """Build the run's parts and train for ``config.steps`` updates (see ``run_loop``)."""
    return run_loop(config, build(config, device), log)


def run_loop(config: Config, parts: Parts, log: LogFn) -> Outcome:
    """Train ``parts`` for ``config.steps`` updates, handing every step's metrics to ``log(step, metrics)``."""
    summary = Summary(config.eval_every, config.skew.steps, config.skew.recovery_tolerance)
    summary.set_run_facts(parts.chance, parts.peak_lr, parts.sharpness_at_init)
    summary.probes_skipped = parts.prober.skipped  # filled while the run goes
    rule = DivergenceRule(config.diverge_factor, config.diverge_window)
    updates = min(config.steps, SMOKE_UPDATES) if config.smoke else config.steps  # the schedule still spans steps
    for step in range(updates):
        if step == config.fail_at_step:
            raise RuntimeError(f"fail_at_step={step}: deliberate failure to test failure handling")
        held_out = evaluate(parts.model, parts.held_out, parts.objective) if step % config.eval_every == 0 else None
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
        summary.add_train(step, row[M.TRAIN_LOSS])
        log(step, row)
        reason = rule.update(step, row[M.TRAIN_LOSS])
        if reason is not None:
            return finish("diverged", step + 1, summary, config, None, step, reason)
    reason = rule.at_end(updates - 1)
    if reason is not None:
        return finish("diverged", updates, summary, config, None, updates - 1, reason)
    final = evaluate(parts.model, parts.held_out, parts.objective)
    summary.add_eval(updates, final)
    log(updates, final)
    if not math.isfinite(final[M.EVAL_LOSS]):  # the last update broke the parameters
        reason = f"non-finite held-out loss after the last update ({final[M.EVAL_LOSS]})"
        return finish("diverged", updates, summary, config, None, updates, reason)
    return finish("completed", updates, summary, config, final)


def finish(
    status: str,
    steps_completed: int,
    summary: Summary,
    config: Config,
    final: dict[str, float] | None,
    diverged_step: int | None = None,
    reason: str | None = None,
) -> Outcome:
    """The run's ``Outcome``: its status, and what it learned against chance (``ablate.run.outcome.classify``)."""
    result = summary.result(final)
    outcome = classify(
        status, result["final_eval_loss"], result["final_eval_acc"], summary.chance, config.untrained_margin
    )
    result["outcome"] = outcome
    if summary.probes_skipped:
        result["probes_skipped"] = dict(summary.probes_skipped)
    return Outcome(status, outcome, steps_completed, diverged_step, reason, result)
