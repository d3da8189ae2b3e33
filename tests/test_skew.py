"""Data skew: the favoured share of early batches, i.i.d. afterwards, pairing, the cue, group-wise evaluation,
and the early over-fitting measures against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from ablate.run import metrics as M
from ablate.run.data.samplers import IIDBatchSampler
from ablate.run.data.skew import HeldOut
from ablate.run.summary import Summary
from ablate.run.train import build, evaluate
from tests.conftest import make_config

CPU = torch.device("cpu")


@pytest.mark.parametrize("mode", ["cluster", "spurious"])
@pytest.mark.parametrize("strength", [0.25, 0.75, 1.0])
def test_skew_phase_has_the_stated_share_then_iid(mode: str, strength: float) -> None:
    config = make_config(f"skew={mode}", f"skew.strength={strength}", "skew.steps=150", "skew.group=2")
    parts = build(config, CPU)
    group = parts.data.train_group
    iid = IIDBatchSampler(parts.data.n_train, 64, config.seed)
    favoured_share = round(strength * 64)
    for step in range(150):
        batch = parts.sampler.batch(step)
        assert len(batch) == 64
        assert int((group[batch] == 2).sum()) == favoured_share, step
    for step in range(150, 400):  # after the skew phase: exactly the i.i.d. stream of this seed
        assert torch.equal(parts.sampler.batch(step), iid.batch(step))
    # favoured examples come from a permutation stream: no repeats until the group is exhausted
    n_group = int((group == 2).sum())
    steps_per_pass = n_group // favoured_share
    seen = torch.cat([parts.sampler.batch(t)[:favoured_share] for t in range(min(steps_per_pass, 150))])
    assert len(set(seen.tolist())) == len(seen)


def test_sorted_walks_the_training_set_in_class_order() -> None:
    parts = build(make_config("skew=sorted", "skew.steps=50"), CPU)
    labels = torch.cat([parts.data.train_y[parts.sampler.batch(t)] for t in range(50)])
    assert torch.equal(labels, torch.sort(labels).values)  # 50 * 64 < 8192: one non-decreasing walk
    assert labels[0] == 0 and len(set(parts.sampler.batch(0).tolist())) == 64


def test_same_seed_streams_are_identical_across_optimizers_and_warmups() -> None:
    for skew in ("none", "cluster", "sorted"):
        samplers = [
            build(make_config(f"skew={skew}", *o), CPU).sampler
            for o in (("optimizer=adam",), ("optimizer=sgd", "warmup=100"), ("optimizer=rmsprop", "lr=0.1"))
        ]
        streams = [[s.batch(t).tolist() for t in range(0, 400, 7)] for s in samplers]
        assert streams[0] == streams[1] == streams[2], skew
    none = build(make_config("skew=none"), CPU).sampler
    cluster = build(make_config("skew=cluster", "skew.steps=100"), CPU).sampler
    assert all(torch.equal(none.batch(t), cluster.batch(t)) for t in range(100, 300))


def test_spurious_cue_marks_the_favoured_group_only() -> None:
    plain = build(make_config("skew=cluster"), CPU)
    cued = build(make_config("skew=spurious", "skew.cue_strength=3.0"), CPU)
    favoured = plain.data.train_group == 0
    diff = cued.data.train_x - plain.data.train_x
    expected = 3.0 * nn.functional.one_hot(plain.data.train_y[favoured], 10).float()
    assert torch.allclose(diff[favoured][:, :10], expected) and diff[favoured][:, 10:].abs().max() == 0
    assert diff[~favoured].abs().max() == 0
    early = cued.held_out.early
    eval_diff = cued.held_out.x - plain.held_out.x
    assert torch.allclose(eval_diff[early][:, :10], 3.0 * nn.functional.one_hot(plain.held_out.y[early], 10).float())
    flipped = cued.held_out.cue_flipped_x - plain.held_out.x[early]
    assert torch.equal(flipped[:, :10].argmax(1), (plain.held_out.y[early] + 1) % 10)
    assert plain.held_out.cue_flipped_x is None


class KnowsOneGroup(nn.Module):
    """Predicts the right label with certainty for the examples it memorised, uniform logits otherwise."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, n_classes: int) -> None:
        super().__init__()
        self.x, self.y, self.n_classes = x, y, n_classes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        match = (x[:, None, :] == self.x[None, :, :]).all(dim=2)
        known = match.any(dim=1)
        logits = torch.zeros(len(x), self.n_classes)
        logits[known] = 50.0 * nn.functional.one_hot(self.y[match[known].float().argmax(1)], self.n_classes).float()
        return logits


def test_group_wise_evaluation_shows_the_gap_of_a_model_that_knows_one_group() -> None:
    parts = build(make_config("data.n_eval=400"), CPU)
    h = parts.held_out
    model = KnowsOneGroup(h.x[h.early], h.y[h.early], 10)
    m = evaluate(model, h)
    assert m[M.EVAL_EARLY_ACC] == 1.0 and m[M.EVAL_EARLY_LOSS] < 1e-6
    assert m[M.EVAL_REST_LOSS] == pytest.approx(math.log(10), rel=1e-6)  # uniform logits: ln C nats
    assert m[M.EVAL_REST_ACC] == pytest.approx(float((h.y[~h.early] == 0).float().mean()))  # argmax of ties = 0
    share = float(h.early.float().mean())
    assert m[M.EVAL_LOSS] == pytest.approx((1 - share) * math.log(10), rel=1e-5)


def test_early_overfitting_measures_against_hand_computed_values() -> None:
    s = Summary(window_steps=2, skew_steps=3, recovery_tolerance=0.1)
    # (step, early loss, rest loss, overall loss); train losses between evals
    evals = [(0, 2.3, 2.3, 2.3), (2, 0.5, 1.5, 1.2), (4, 0.4, 1.9, 1.5), (6, 0.4, 1.05, 0.9), (8, 0.3, 1.0, 0.8)]
    train = {0: 2.3, 1: 1.0, 2: 0.6, 3: 0.4, 4: 0.5, 5: 0.5, 6: 0.6, 7: 0.7}
    for step in range(9):
        e = next((x for x in evals if x[0] == step), None)
        if e is not None:
            row = {M.EVAL_LOSS: e[3], M.EVAL_ACC: 0.5, M.EVAL_EARLY_LOSS: e[1], M.EVAL_REST_LOSS: e[2]}
            row[M.EVAL_EARLY_ACC] = 0.9
            row[M.EVAL_CUE_FLIPPED_ACC] = 0.6
            s.add_eval(step, row)
        if step in train:
            s.add_train(step, train[step])
    out = s.result(final={M.EVAL_LOSS: 0.8, M.EVAL_ACC: 0.5})
    assert out["skew_end_step"] == 4  # first eval step >= skew.steps = 3
    assert out["skew_gap_end"] == pytest.approx(1.5)
    assert out["skew_gap_peak"] == pytest.approx(1.5) and out["skew_gap_peak_step"] == 4
    # recovered when rest is within 10% of its final 1.0: step 6 (1.05) and 8 (1.0); step 4 (1.9) is not
    assert out["rest_recovery_step"] == 6
    # eval steps 2 and 4: eval loss minus the mean train loss of the 2 updates before each
    assert out["early_train_eval_gap"] == pytest.approx(((1.2 - (2.3 + 1.0) / 2) + (1.5 - (0.6 + 0.4) / 2)) / 2)
    assert out["cue_reliance_end"] == pytest.approx(0.3)
    assert out["first_train_loss"] == 2.3 and out["best_eval_loss"] == 0.8 and out["best_eval_loss_step"] == 8
    diverged = s.result(final=None)
    assert diverged["rest_recovery_step"] is None and diverged["skew_gap_end"] == pytest.approx(1.5)


def test_skew_config_errors() -> None:
    from ablate.checks import ConfigError

    with pytest.raises(ConfigError, match=r"skew.group=4 is not allowed with data=clusters: its groups are 0 .. 3"):
        make_config("skew=cluster", "skew.group=4")
    with pytest.raises(ConfigError, match=r"skew.strength=0.0 is not allowed"):
        make_config("skew=cluster", "skew.strength=0")
    assert make_config("data=digits", "skew=sorted", "skew.group=9").skew.group == 9


def test_held_out_masks_match_groups() -> None:
    parts = build(make_config("skew.group=1"), CPU)
    assert isinstance(parts.held_out, HeldOut)
    assert torch.equal(parts.held_out.early, parts.data.eval_group == 1)


def test_summary_rows_are_in_run_order_past_ten(tmp_path) -> None:
    import json

    from ablate.study.directory import run_records

    for job in (0, 1, 2, 10, 11):
        (tmp_path / str(job)).mkdir()
        (tmp_path / str(job) / "result.json").write_text(json.dumps({"job": job}))
    assert [r["job"] for _, r in run_records(tmp_path)] == [0, 1, 2, 10, 11]


@pytest.mark.parametrize("cue_after", ["removed", "shuffled"])
def test_a_transient_cue_is_on_the_skewed_batches_only(cue_after: str) -> None:
    from ablate.run.train import train_inputs

    config = make_config(
        "skew=spurious", f"skew.cue_after={cue_after}", "skew.steps=5", "skew.cue_strength=10", "tracker=local"
    )
    parts = build(config, torch.device("cpu"))
    favoured = parts.data.train_group == config.skew.group
    n_classes = parts.data.n_classes
    during, after = train_inputs(parts, 4), train_inputs(parts, 5)
    cue = during[favoured, :n_classes] - after[favoured, :n_classes]
    if cue_after == "removed":  # the cue was added during the skew, on the true label, and is gone after it
        expected = 10 * torch.nn.functional.one_hot(parts.data.train_y[favoured], n_classes).float()
        assert torch.allclose(cue, expected)
    else:  # after the skew the cue sits on random labels: as often right as chance
        on_true = (after[favoured, :n_classes].argmax(1) == parts.data.train_y[favoured]).float().mean()
        assert 0.05 < on_true.item() < 0.2  # ~1/10 of the labels, not all of them
    assert torch.equal(during[~favoured], after[~favoured])  # the other groups never carry it
    assert parts.held_out.cue_flipped_x is not None
    assert torch.equal(parts.held_out.x[parts.held_out.early], parts.data.eval_x[parts.held_out.early])  # no cue
