"""Outcome rules: divergence that tolerates a recovering spike, chance levels, and trained / untrained / diverged.

The three hand-made cases of issue 12 run for real: a full-batch gradient-descent run that catapults (spikes
above the divergence threshold, then trains), one that goes to NaN, and one that plateaus at chance.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from ablate.record.runner import execute
from ablate.run.objective import REGRESSION, Chance, chance_level
from ablate.run.outcome import DivergenceRule, classify
from analysis.load import read_metrics, read_result
from tests.conftest import make_config


def run(tmp_path: Path, *overrides: str, name: str = "run") -> tuple[dict, Path]:
    config = make_config(*overrides, "tracker=local", "tracker.progress=off")
    run_dir = tmp_path / name
    execute(config, run_dir, name, list(overrides), {})
    result = read_result(run_dir)
    assert result is not None
    return result, run_dir


# ------------------------------------------------------------------------------------------- divergence rule
def test_non_finite_loss_diverges_at_once() -> None:
    rule = DivergenceRule(factor=10, window_steps=50)
    assert rule.update(0, 2.3) is None
    assert rule.update(1, float("nan")) == "non-finite train loss (nan)"
    assert DivergenceRule(10, 50).update(0, float("inf")) == "non-finite train loss (inf)"


def test_a_spike_shorter_than_the_window_is_not_divergence() -> None:
    rule = DivergenceRule(factor=10, window_steps=3)
    losses = [2.0, 25.0, 400.0, 19.0, 1.0, 0.5]  # above 10 x 2.0 = 20 at steps 1 and 2 only (19 < 20)
    assert [rule.update(t, x) for t, x in enumerate(losses)] == [None] * 6
    assert rule.at_end(5) is None


def test_a_sustained_excursion_diverges_at_the_windows_last_step() -> None:
    rule = DivergenceRule(factor=10, window_steps=3)
    reasons = [rule.update(t, x) for t, x in enumerate([2.0, 21.0, 30.0, 50.0])]
    assert reasons[:3] == [None, None, None]
    assert reasons[3] is not None and "for 3 updates (steps 1..3" in reasons[3]


def test_the_window_counts_consecutive_updates_only() -> None:
    rule = DivergenceRule(factor=10, window_steps=3)
    reasons = [rule.update(t, x) for t, x in enumerate([2.0, 21.0, 22.0, 5.0, 21.0, 22.0])]
    assert reasons == [None] * 6
    assert "from step 4 to the last update (5)" in (rule.at_end(5) or "")  # ends inside an excursion


def test_window_one_is_the_old_stop_at_the_first_spike_rule() -> None:
    rule = DivergenceRule(factor=10, window_steps=1)
    assert rule.update(0, 2.3) is None and rule.update(1, 22.9) is None
    assert rule.update(2, 23.1) is not None


# ------------------------------------------------------------------------------------------------- chance
def test_chance_level_of_classification_by_hand() -> None:
    # train labels: class 0 x3, class 1 x1, class 2 x0 -> p = (4, 2, 1) / 7 with add-one smoothing (N=4, C=3)
    train = torch.tensor([0, 0, 0, 1])
    held_out = torch.tensor([0, 1, 2, 0])
    chance = chance_level("classification", train, held_out, 3)
    expected = -(2 * math.log(4 / 7) + math.log(2 / 7) + math.log(1 / 7)) / 4
    assert chance.loss == pytest.approx(expected, rel=1e-12)
    assert chance.acc == pytest.approx(0.5)  # the most frequent training class (0) is right on 2 of 4


def test_chance_level_of_tokens_counts_every_position() -> None:
    train = torch.tensor([[0, 1], [1, 1]])  # tokens: 0 x1, 1 x3 -> p = (2, 4) / 6
    held_out = torch.tensor([[1, 0]])
    chance = chance_level("classification", train, held_out, 2)
    assert chance.loss == pytest.approx(-(math.log(4 / 6) + math.log(2 / 6)) / 2, rel=1e-12)
    assert chance.acc == pytest.approx(0.5)


def test_chance_level_of_balanced_classes_is_ln_c() -> None:
    labels = torch.arange(10).repeat(100)
    assert chance_level("classification", labels, labels, 10).loss == pytest.approx(math.log(10), rel=1e-12)


def test_chance_level_of_regression_is_the_variance_around_the_training_mean() -> None:
    chance = chance_level(REGRESSION, torch.tensor([1.0, 3.0]), torch.tensor([0.0, 4.0]), 1)
    assert chance.loss == pytest.approx((4.0 + 4.0) / 2) and chance.acc is None  # mean 2: (0-2)^2, (4-2)^2


# ------------------------------------------------------------------------------------------------ outcome
@pytest.mark.parametrize(
    ("status", "loss", "acc", "expected"),
    [
        ("completed", 0.3, 0.9, "trained"),
        ("completed", 2.30, 0.10, "untrained"),  # at chance on both
        ("completed", 1.83, 0.10, "trained"),  # loss <= 0.8 x 2.3 = 1.84
        ("completed", 1.85, 0.10, "untrained"),
        ("completed", 3.0, 0.29, "trained"),  # acc >= 0.1 + 0.2 x 0.9 = 0.28: learned, over-confident
        ("completed", 3.0, 0.27, "untrained"),
        ("diverged", None, None, "diverged"),
        ("completed", float("nan"), None, "diverged"),
        ("failed", None, None, None),
    ],
)
def test_outcome_rule(status: str, loss: float | None, acc: float | None, expected: str | None) -> None:
    assert classify(status, loss, acc, Chance(2.3, 0.1), margin=0.2) == expected


def test_outcome_of_regression_uses_the_loss_only() -> None:
    assert classify("completed", 0.79, None, Chance(1.0, None), 0.2) == "trained"
    assert classify("completed", 0.81, None, Chance(1.0, None), 0.2) == "untrained"


# ------------------------------------------------------------------------------------- the three real cases
CATAPULT = (
    "data=teacher",
    "model.activation=tanh",
    "model.init_scale=2",
    "model.hidden_sizes=[256,256]",
    "batch_size=full",
    "optimizer=sgd",
    "lr_sharpness_multiple=2.1",  # gradient descent at 2.1 x its stability limit 2 / sharpness at init
    "steps=60",
    "eval_every=20",
    "diverge_factor=5",
)


def test_a_run_that_catapults_and_recovers_is_trained(tmp_path: Path) -> None:
    result, run_dir = run(tmp_path, *CATAPULT)
    s = result["summary"]
    assert result["status"] == "completed" and result["outcome"] == s["outcome"] == "trained"
    assert s["peak_loss_ratio"] > 5 and 0 < s["peak_train_loss_step"] < 10  # it spiked above the threshold ...
    assert s["final_eval_loss"] < 0.5 * s["chance_loss"]  # ... and then trained
    assert s["peak_lr"] == pytest.approx(2.1 * 2 / s["sharpness_at_init"], rel=1e-9)
    losses = [row["train/loss"] for row in read_metrics(run_dir) if "train/loss" in row]
    assert max(losses) == pytest.approx(s["peak_train_loss"], rel=1e-6)
    # the old rule (stop at the first loss above the threshold) calls the same run diverged
    old, _ = run(tmp_path, *CATAPULT, "diverge_window=1", name="old")
    assert old["status"] == old["outcome"] == "diverged"
    assert old["summary"]["diverged_step"] <= s["peak_train_loss_step"]  # stopped at the spike, not after it


def test_a_run_that_goes_to_nan_is_diverged_at_once(tmp_path: Path) -> None:
    result, _ = run(tmp_path, "optimizer=sgd", "lr=1e4", "steps=200", "data.n_train=512", "data.n_eval=256")
    s = result["summary"]
    assert result["status"] == result["outcome"] == "diverged"
    assert s["diverged_step"] < 50 and "non-finite" in s["divergence_reason"]  # not after the 50-step window


def test_a_run_that_plateaus_at_chance_is_untrained(tmp_path: Path) -> None:
    result, _ = run(tmp_path, "optimizer=adam", "lr=0.3", "steps=200", "data.n_train=2048", "data.n_eval=1024")
    s = result["summary"]
    assert result["status"] == "completed" and result["outcome"] == "untrained"  # finished, learned nothing
    assert s["final_eval_loss"] > 0.8 * s["chance_loss"] and s["final_eval_acc"] < 0.2
    assert s["chance_loss"] == pytest.approx(math.log(10), abs=0.01)  # 10 balanced classes
