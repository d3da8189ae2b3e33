"""Probes inside real runs: on at their intervals, absent otherwise, and never changing what a run computes."""

from __future__ import annotations

from pathlib import Path

import pytest

from ablate.record.runner import execute
from ablate.run import metrics as M
from analysis.load import read_metrics
from tests.conftest import make_config

SMALL = ("steps=30", "eval_every=10", "tracker.progress=off", "data.n_train=512", "data.n_eval=256")
PROBES = ("probes=all", "probes.sharpness_every=10", "probes.sharpness_iters=5", "probes.second_moment_every=5")


def run(tmp_path: Path, name: str, *overrides: str) -> list[dict]:
    execute(make_config(*SMALL, *overrides), tmp_path / name, name, [], {})
    return read_metrics(tmp_path / name)


def training_metrics(rows: list[dict]) -> list[dict]:
    keep = (M.TRAIN_LOSS, M.LR, M.EVAL_LOSS, M.EVAL_ACC, M.UPDATE_RATIO, M.GRAD_NORM)
    return [{k: r[k] for k in keep if k in r} for r in rows]


@pytest.mark.parametrize(
    "overrides",
    [
        ("optimizer=adam",),
        ("optimizer=sgd",),
        ("model=transformer", "data=sort", "model.dropout=0.1", "probes.sharpness_examples=64"),
    ],
    ids=["adam", "sgd", "transformer-with-dropout"],
)
def test_probes_do_not_change_the_run(tmp_path: Path, overrides: tuple[str, ...]) -> None:
    plain = run(tmp_path, "plain", *overrides)
    probed = run(tmp_path, "probed", *overrides, *PROBES)
    assert training_metrics(plain) == training_metrics(probed)
    assert not any(k.startswith("probe/") for r in plain for k in r)


def test_probe_metrics_at_their_intervals(tmp_path: Path) -> None:
    rows = {r["step"]: r for r in run(tmp_path, "adam", "optimizer=adam", *PROBES)}
    for step in range(30):
        r = rows[step]
        assert ("probe/sharpness" in r) == (step % 10 == 0)
        assert ("probe/dead_relu" in r) == (step % 50 == 0)
        assert ("probe/update_ratio/0.weight" in r) == (step % 10 == 0)
        # the second moment exists from the first update on: nothing to read at step 0
        assert ("probe/v_hat_rel_error" in r) == (step % 5 == 0 and step > 0)
        assert (M.PROBE_TIME in r) == (step % 5 == 0)
    r = rows[10]
    assert r["probe/sharpness_limit"] == pytest.approx(2 / 1e-3)
    assert r["probe/precond_sharpness_limit"] == pytest.approx(38 / 1e-3)  # (2 + 2 beta1) / ((1 - beta1) lr)
    assert r["probe/sharpness"] > 0 and 0 <= rows[0]["probe/dead_relu"] <= 1
    assert r["probe/eff_step/q10"] <= r["probe/eff_step/q50"] <= r["probe/eff_step/q90"]
    assert 0 < r["probe/v_hat_rel_error"]
    assert r["probe/update_ratio/4.bias"] > 0  # every layer of the MLP, named as in model.named_parameters()
