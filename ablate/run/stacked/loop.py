"""The stacked loop: ``ablate.run.train.run_loop`` for the M members of a stack at once.

Each member is built exactly as its solo run (``ablate.run.train.build``: its seed, init, data skew, batch sampler,
schedule, objective and chance level), and keeps its own ``Summary`` and ``DivergenceRule``. Per step ``t``:

1. every ``eval_every`` steps, each member is evaluated on its held-out split (one ``vmap``-ed pass);
2. member ``m`` draws its batch ``idx_m = sampler_m.batch(t)`` and its rate ``lr_m = schedule_m(t)``;
3. one forward and backward pass of the stacked model gives each member's batch loss ``l_m`` and gradient;
4. the stacked optimizer updates every member with its own hyperparameters and ``lr_m``;
5. each member's row goes to its own ``log``; a member whose ``DivergenceRule`` fires is finished ``diverged``
   at once (its record closed) and dropped from the stack: its parameters stay frozen where they were, and the
   others go on without it.

After the last update every remaining member gets the solo loop's end: the rule's end check, the final evaluation,
and the non-finite check. The numbers are those of the solo run up to float32 rounding (a batched matmul sums in
another order than the solo one); ``tests/test_stacked.py`` states the tolerance. ``sys/step_time`` of a member is
the stack's step time divided by the members it trained, its share of the stack.

A model that ``vmap`` cannot run (e.g. one calling ``.item()`` in its forward pass) makes the stack train its
members one after another with the solo loop, after one line saying why.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from typing import Any

import torch

from ablate.config import SMOKE_UPDATES, Config
from ablate.run import metrics as M
from ablate.run.data.build import build_dataset
from ablate.run.data.config import CustomDataConfig
from ablate.run.data.dataset import Dataset
from ablate.run.objective import IGNORE, REGRESSION, Objective
from ablate.run.outcome import DivergenceRule
from ablate.run.stacked.model import StackedModel
from ablate.run.stacked.optim import StackedOptimizer
from ablate.run.summary import Summary
from ablate.run.train import LogFn, Outcome, Parts, build, finish, held_out_metrics, run_loop, train_inputs

EVAL_ROWS = 8192
"""Held-out examples evaluated per pass, over a slice of the members: all M at once would push ``M x n`` rows of
activations through memory (2.4x slower than M solo evaluations for 64 members of the default MLP); slices of
``EVAL_ROWS // n`` members stay in cache (measured fastest here between 1 and 16 members of 2048 rows)."""

OnDone = Callable[[int, "Outcome | Exception"], None]
"""Called once per member, with its index and how it ended (an exception: it failed to build)."""


def train_stack(
    configs: list[Config],
    device: torch.device,
    logs: list[LogFn],
    on_done: OnDone,
    on_built: Callable[[], None] = lambda: None,
) -> None:
    """Build every member (a member that fails to build ends at once, the others go on) and train the stack;
    ``on_built`` is called once the members are built, before the first ``log``."""
    datasets: dict[str, Dataset] = {}
    built: dict[int, Parts] = {}
    for i, config in enumerate(configs):
        try:
            built[i] = build(config, device, shared_dataset(config, device, datasets))
        except Exception as err:
            on_done(i, err)
    on_built()
    if not built:
        return
    members = sorted(built)
    reason = unstackable_model(built[members[0]], device)
    if reason is not None:
        print(f"note: this stack of {len(members)} runs trains one run at a time: {reason}", file=sys.stderr)
        for i in members:
            on_done(i, run_loop(configs[i], built[i], logs[i]))
        return
    run_stack(
        [configs[i] for i in members],
        [built[i] for i in members],
        [logs[i] for i in members],
        lambda j, outcome: on_done(members[j], outcome),
    )


def shared_dataset(config: Config, device: torch.device, datasets: dict[str, Dataset]) -> Dataset | None:
    """The built-in dataset of ``config.data``, built once per stack; None for the user's data factories (they may
    draw from the global random state, which ``build`` seeds per run)."""
    if isinstance(config.data, CustomDataConfig):
        return None
    key = repr(config.data)
    if key not in datasets:
        datasets[key] = build_dataset(config.data, device)
    return datasets[key]


def unstackable_model(parts: Parts, device: torch.device) -> str | None:
    """Why ``vmap`` cannot run this architecture (one line), or None when it can: a forward pass on two examples."""
    try:
        StackedModel([parts.model, parts.model])(parts.data.train_x[:2].to(device), shared=True)
    except Exception as err:
        first = (str(err).strip().splitlines() or [""])[0]
        return f"vmap cannot run the model ({type(err).__name__}: {first[:200]})"
    return None


def run_stack(configs: list[Config], parts: list[Parts], logs: list[LogFn], on_done: OnDone) -> None:
    """Train the built members for ``steps`` updates (module docstring); ``on_done`` gets each member's ``Outcome``."""
    c = configs[0]  # what members share (ablate.run.stacked.compat.SHARED)
    summaries = []
    for config, p in zip(configs, parts, strict=True):
        summary = Summary(config.eval_every, config.skew.steps, config.skew.recovery_tolerance)
        summary.set_run_facts(p.chance, p.peak_lr, p.sharpness_at_init)
        summaries.append(summary)
    rules = [DivergenceRule(config.diverge_factor, config.diverge_window) for config in configs]
    model = StackedModel([p.model for p in parts])
    optimizer = StackedOptimizer([config.optimizer for config in configs], model.optim_params)
    active = list(range(len(configs)))  # members still training, in stack order
    updates = min(c.steps, SMOKE_UPDATES) if c.smoke else c.steps  # the schedule still spans steps
    for step in range(updates):
        if step == c.fail_at_step:
            raise RuntimeError(f"fail_at_step={step}: deliberate failure to test failure handling")
        members = [parts[i] for i in active]
        held_out = evaluate_stack(model, members) if step % c.eval_every == 0 else None
        tic = time.perf_counter()
        rows = stack_step(model, optimizer, members, step, step % c.metrics_every == 0)
        share_s = (time.perf_counter() - tic) / len(active)
        stopped = []
        for j, i in enumerate(active):
            row = rows[j]
            row[M.STEP_TIME] = share_s
            if held_out is not None:
                summaries[i].add_eval(step, held_out[j])  # before add_train, as in the solo loop
                row.update(held_out[j])
            summaries[i].add_train(step, row[M.TRAIN_LOSS])
            logs[i](step, row)
            reason = rules[i].update(step, row[M.TRAIN_LOSS])
            if reason is not None:
                on_done(i, finish("diverged", step + 1, summaries[i], configs[i], None, step, reason))
                stopped.append(j)
        if stopped:
            keep = [j for j in range(len(active)) if j not in stopped]
            active = [active[j] for j in keep]
            if not active:
                return
            index = torch.tensor(keep, device=model.params[0].device)
            model.select(index)
            optimizer.select(index)
    finals = evaluate_stack(model, [parts[i] for i in active])
    for j, i in enumerate(active):
        on_done(i, end_of_run(configs[i], summaries[i], rules[i], updates, finals[j], logs[i]))


def end_of_run(
    config: Config, summary: Summary, rule: DivergenceRule, updates: int, final: dict[str, float], log: LogFn
) -> Outcome:
    """The solo loop's end for one member: the rule's end check, then the final evaluation and its check."""
    reason = rule.at_end(updates - 1)
    if reason is not None:
        return finish("diverged", updates, summary, config, None, updates - 1, reason)
    summary.add_eval(updates, final)
    log(updates, final)
    if not math.isfinite(final[M.EVAL_LOSS]):
        reason = f"non-finite held-out loss after the last update ({final[M.EVAL_LOSS]})"
        return finish("diverged", updates, summary, config, None, updates, reason)
    return finish("completed", updates, summary, config, final)


def gather(tensors: list[torch.Tensor], idx: torch.Tensor) -> torch.Tensor:
    """``[M, B, ...]``: member ``m``'s rows ``idx[m]`` of its tensor; one indexing op when the members share it."""
    if all(t is tensors[0] for t in tensors):
        return tensors[0][idx]
    return torch.stack([t[i] for t, i in zip(tensors, idx, strict=True)])


def member_losses(obj: Objective, output: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Each member's batch loss ``[M]``, as ``Objective.loss`` computes it for one run: mean cross-entropy over the
    scored targets, mean squared error, or the mean of the user's per-example loss."""
    n_members = output.shape[0]
    if obj.user_loss is not None:
        return obj.user_loss(output.flatten(0, 1), y.flatten(0, 1)).view(n_members, -1).mean(dim=1)
    if obj.task == REGRESSION:
        return (output.squeeze(-1) - y).square().view(n_members, -1).mean(dim=1)
    per_target = torch.nn.functional.cross_entropy(output.flatten(0, -2), y.flatten(), reduction="none")
    scored = (y != IGNORE).view(n_members, -1)
    return (per_target.view(n_members, -1) * scored).sum(dim=1) / scored.sum(dim=1)


def member_accuracy(obj: Objective, output: torch.Tensor, y: torch.Tensor) -> torch.Tensor | None:
    """Each member's batch accuracy ``[M]`` over its scored targets (``Objective.accuracy``); None for regression."""
    if obj.task == REGRESSION:
        return None
    n_members = output.shape[0]
    scored = (y != IGNORE).view(n_members, -1)
    hits = ((output.argmax(dim=-1) == y).view(n_members, -1) & scored).sum(dim=1)
    return hits / scored.sum(dim=1).clamp_min(1)


def member_norms(tensors: list[torch.Tensor]) -> torch.Tensor:
    """``sqrt(sum_k ||x_k[m]||^2)`` for every member ``m`` of stacked tensors ``x_k`` ``[M, ...]``."""
    return torch.stack([t.flatten(1).norm(dim=1) for t in tensors]).square().sum(dim=0).sqrt()


def stack_step(
    model: StackedModel, optimizer: StackedOptimizer, members: list[Parts], step: int, measure: bool
) -> list[dict[str, float]]:
    """One update of every member (steps 2-4 of the module docstring); returns each member's row, as ``train_step``."""
    lrs = [p.schedule(step) for p in members]
    device = model.params[0].device
    idx = torch.stack([p.sampler.batch(step) for p in members])
    x = gather([train_inputs(p, step) for p in members], idx)
    y = gather([p.data.train_y for p in members], idx)
    obj = members[0].objective
    output = model(x)
    losses = member_losses(obj, output, y)
    losses.sum().backward()  # each member's gradient comes from its own loss only
    model.gather_grads()
    params = model.optim_params
    columns: dict[str, Any] = {M.TRAIN_LOSS: losses.detach(), M.LR: lrs}
    if measure:
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
        acc = member_accuracy(obj, output.detach(), y)
        if acc is not None:
            columns[M.TRAIN_ACC] = acc
        columns[M.GRAD_NORM] = member_norms(model.split(grads[0]) if model.flat is not None else grads)
        before = [p.detach().clone() for p in params]
    optimizer.step(params, torch.tensor(lrs, dtype=torch.float64, device=device))  # as torch.optim: a double
    model.zero_grad()
    if measure:
        with torch.no_grad():
            change = [p.detach() - b for p, b in zip(params, before, strict=True)]
            if model.flat is not None:  # per parameter, as the solo loop sums them
                change, before = model.split(change[0]), model.split(before[0])
            columns[M.UPDATE_RATIO] = member_norms(change) / member_norms(before)
    values = {key: v.tolist() if isinstance(v, torch.Tensor) else v for key, v in columns.items()}
    return [{key: float(v[j]) for key, v in values.items()} for j in range(len(members))]


@torch.no_grad()
def evaluate_stack(model: StackedModel, members: list[Parts]) -> list[dict[str, float]]:
    """Each member's ``evaluate`` metrics: a stacked pass over the held-out split (shared by the members, or each its
    own) for each slice of ``EVAL_ROWS // n`` members, plus the cue-flipped pass for members with the spurious cue."""
    model.train(False)
    xs = [p.held_out.x for p in members]
    shared = all(x is xs[0] for x in xs)
    x = xs[0] if shared else torch.stack(xs)
    chunk = max(1, EVAL_ROWS // max(1, xs[0].shape[0]))
    output = torch.cat(
        [model(x if shared else x[a : a + chunk], shared, slice(a, a + chunk)) for a in range(0, len(members), chunk)]
    )
    flipped: list[torch.Tensor | None] = [None] * len(members)
    cued = [j for j, p in enumerate(members) if p.held_out.cue_flipped_x is not None]
    for j in cued:
        cue_flipped = members[j].held_out.cue_flipped_x
        assert cue_flipped is not None
        flipped[j] = model.forward_member(j, cue_flipped)
    model.train(True)
    return [held_out_metrics(output[j], flipped[j], p.held_out, p.objective) for j, p in enumerate(members)]
