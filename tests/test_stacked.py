"""The stacked loop against the solo loop: parity per optimizer, divergence isolation, reproducibility, grouping.

Tolerance: a stacked member computes its forward and backward passes as batched matmuls, which sum in another
order than the solo run's matmuls, so the two agree to float32 rounding, not bitwise; over a few hundred updates
those rounding differences grow with the trajectory's own sensitivity. ``RTOL`` below is the agreement asked of
every logged ``train/loss``, ``eval/*`` value and the final held-out loss after 300 updates (the largest relative
difference measured on this machine is given beside it).
"""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch

from ablate.config import Config
from ablate.run import metrics as M
from ablate.run.stacked.compat import group_stacks, solo_reason, stack_key
from ablate.run.stacked.loop import train_stack
from ablate.run.train import Outcome, train
from tests.conftest import make_config

RTOL = 1e-6  # float32 rounding: the largest difference measured on this CPU is 3.5e-7 (momentum, 300 updates)
STEPS = 300
BASE = ("steps=300", "eval_every=50", "metrics_every=25", "tracker=local", "tracker.progress=off", "cpu_threads=1")

OPTIMIZERS = {
    "sgd": ("optimizer=sgd", ["lr=0.05 warmup=0 seed=0", "lr=0.1 warmup=50 seed=1", "lr=0.02 warmup=100 seed=2"]),
    "momentum": (
        "optimizer=momentum",
        ["lr=0.02 warmup=0 seed=0", "lr=0.05 warmup=30 seed=1 optimizer.momentum=0.8", "lr=0.01 warmup=100 seed=2"],
    ),
    "adam": (
        "optimizer=adam",
        ["lr=1e-3 warmup=0 seed=0", "lr=2e-3 warmup=50 seed=1 optimizer.beta2=0.99", "lr=1e-3 warmup=100 seed=2"],
    ),
    "adamw": (
        "optimizer=adamw",
        [
            "lr=1e-3 warmup=0 seed=0",
            "lr=1.5e-3 warmup=50 seed=1 optimizer.weight_decay=0.1",
            "lr=1e-3 warmup=10 seed=2",
        ],
    ),
    "radam": (
        "optimizer=radam",
        ["lr=1e-3 warmup=0 seed=0", "lr=2e-3 warmup=20 seed=1 optimizer.beta2=0.99", "lr=1e-3 warmup=100 seed=2"],
    ),
    "rmsprop": (
        "optimizer=rmsprop",
        ["lr=1e-3 warmup=0 seed=0", "lr=3e-4 warmup=50 seed=1 optimizer.alpha=0.9", "lr=1e-3 warmup=100 seed=2"],
    ),
}


def configs_of(optimizer: str, members: list[str], *extra: str) -> list[Config]:
    return [make_config(*BASE, optimizer, *member.split(), *extra) for member in members]


def solo(config: Config) -> tuple[list[tuple[int, dict[str, float]]], Outcome]:
    rows: list[tuple[int, dict[str, float]]] = []
    outcome = train(config, torch.device("cpu"), lambda step, row: rows.append((step, dict(row))))
    return rows, outcome


def stacked(configs: list[Config]) -> tuple[list[list[tuple[int, dict[str, float]]]], list[Any]]:
    rows: list[list[tuple[int, dict[str, float]]]] = [[] for _ in configs]
    outcomes: list[Any] = [None] * len(configs)

    def log_of(i: int) -> Any:
        return lambda step, row: rows[i].append((step, dict(row)))

    def on_done(i: int, outcome: Any) -> None:
        assert outcomes[i] is None, f"member {i} ended twice"
        outcomes[i] = outcome

    train_stack(configs, torch.device("cpu"), [log_of(i) for i in range(len(configs))], on_done)
    return rows, outcomes


def max_relative_difference(a: list[tuple[int, dict[str, float]]], b: list[tuple[int, dict[str, float]]]) -> float:
    """The largest ``|x - y| / max(|y|, 1e-3)`` over the metrics both record at every step (time excluded)."""
    assert [step for step, _ in a] == [step for step, _ in b]
    worst = 0.0
    for (_, row_a), (_, row_b) in zip(a, b, strict=True):
        assert set(row_a) == set(row_b)
        for key in row_a:
            if key in (M.STEP_TIME,):
                continue
            x, y = row_a[key], row_b[key]
            worst = max(worst, abs(x - y) / max(abs(y), 1e-3))
    return worst


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_parity_with_solo_runs(name: str) -> None:
    """Each member of a stack of three (different lr, warmup, seed and a hyperparameter) matches its solo run on every
    logged metric to ``RTOL`` over 300 updates, and ends with the same status, outcome and step count."""
    optimizer, members = OPTIMIZERS[name]
    configs = configs_of(optimizer, members)
    assert len({stack_key(c) for c in configs}) == 1
    rows, outcomes = stacked(configs)
    for config, member_rows, outcome in zip(configs, rows, outcomes, strict=True):
        solo_rows, solo_outcome = solo(config)
        assert isinstance(outcome, Outcome)
        assert (outcome.status, outcome.outcome, outcome.steps_completed) == (
            solo_outcome.status,
            solo_outcome.outcome,
            solo_outcome.steps_completed,
        )
        assert max_relative_difference(member_rows, solo_rows) <= RTOL, name
        final, solo_final = outcome.summary["final_eval_loss"], solo_outcome.summary["final_eval_loss"]
        assert math.isclose(final, solo_final, rel_tol=RTOL)


def test_stacked_runs_are_bitwise_reproducible() -> None:
    configs = configs_of(*OPTIMIZERS["adam"])
    first, _ = stacked(configs)
    second, _ = stacked(configs)
    strip = [[(s, {k: v for k, v in r.items() if k != M.STEP_TIME}) for s, r in member] for member in first]
    again = [[(s, {k: v for k, v in r.items() if k != M.STEP_TIME}) for s, r in member] for member in second]
    assert strip == again


def test_a_diverged_member_is_frozen_and_the_others_go_on() -> None:
    """A member at a rate far past stability diverges and is recorded; the others' rows are those of the same stack
    without it (bitwise on this CPU) and they complete."""
    members = ["lr=1e-3 seed=0", "lr=50 seed=1", "lr=2e-3 seed=2"]
    configs = configs_of("optimizer=adam", members, "diverge_window=5")
    rows, outcomes = stacked(configs)
    assert [o.status for o in outcomes] == ["completed", "diverged", "completed"]
    diverged = outcomes[1]
    assert diverged.diverged_step is not None and diverged.steps_completed == diverged.diverged_step + 1
    assert len([r for _, r in rows[1] if M.TRAIN_LOSS in r]) == diverged.steps_completed  # nothing after it stopped
    without, _ = stacked([configs[0], configs[2]])
    assert rows[0] == without[0] or max_relative_difference(rows[0], without[0]) <= RTOL
    assert max_relative_difference(rows[2], without[1]) <= RTOL
    solo_rows, solo_outcome = solo(configs[1])
    assert solo_outcome.status == "diverged" and solo_outcome.diverged_step == diverged.diverged_step


def test_skew_and_schedules_differ_per_member() -> None:
    """Members with different skews (cluster, spurious with its cue) and base schedules match their solo runs."""
    members = [
        "seed=0 skew=cluster skew.steps=50 schedule=cosine",
        "seed=1 skew=spurious skew.steps=50 warmup=20",
        "seed=2 skew=none schedule=linear warmup_shape=exponential warmup=40",
    ]
    configs = configs_of("optimizer=adam", members, "steps=150")
    rows, outcomes = stacked(configs)
    for config, member_rows in zip(configs, rows, strict=True):
        solo_rows, _ = solo(config)
        assert max_relative_difference(member_rows, solo_rows) <= RTOL


def test_grouping_keeps_incompatible_runs_apart() -> None:
    a = make_config("optimizer=adam", "seed=0")
    b = make_config("optimizer=adam", "seed=1", "lr=0.01", "warmup=100")
    c = make_config("optimizer=sgd", "seed=0")  # another optimizer kind
    d = make_config("optimizer=adam", "seed=2", "model.hidden_sizes=[64]")  # another architecture
    e = make_config("optimizer=adam", "seed=3", "probes=all")  # probes: alone
    assert solo_reason(e) is not None and "probes" in str(solo_reason(e))
    assert group_stacks([a, b, c, d, e], 64) == [[0, 1], [2], [3], [4]]
    assert group_stacks([a, b], 1) == [[0], [1]]
    many = [make_config("optimizer=adam", f"seed={s}") for s in range(5)]
    assert group_stacks(many, 2) == [[0, 1], [2, 3], [4]]


def test_a_sensitive_trajectory_drifts_no_more_than_a_one_ulp_nudge_of_the_solo_run() -> None:
    """Adam at 3e-3 with beta2=0.99 is on a sensitive trajectory: the stacked member drifts from its solo run by
    ~3e-2 relative after 300 updates. That is the trajectory's own sensitivity, not other maths: nudging the solo
    run's first weight matrix by one float32 ulp drifts it by as much (measured: 2.7e-2 both)."""
    from ablate.run.train import build, run_loop

    (config,) = configs_of("optimizer=adam", ["lr=3e-3 warmup=50 seed=1 optimizer.beta2=0.99"])
    solo_rows, _ = solo(config)
    rows, _ = stacked([config, configs_of("optimizer=adam", ["lr=1e-3 seed=0"])[0]])
    parts = build(config, torch.device("cpu"))
    with torch.no_grad():
        weight = next(parts.model.parameters())
        weight.copy_(torch.nextafter(weight, torch.full_like(weight, math.inf)))
    nudged: list[tuple[int, dict[str, float]]] = []
    run_loop(config, parts, lambda step, row: nudged.append((step, dict(row))))
    stacked_drift = max_relative_difference(rows[0], solo_rows)
    nudge_drift = max_relative_difference(nudged, solo_rows)
    assert nudge_drift > 1e-3  # the trajectory is sensitive: the test compares like with like
    assert stacked_drift <= 3 * nudge_drift
