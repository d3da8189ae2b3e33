"""The real command: ``python -m ablate -m warmup=0,100,500`` in a subprocess, and a study with a failure."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from ablate.run import metrics as M
from ablate.run.schedules import build_schedule
from analysis.load import read_metrics, read_result
from tests.conftest import make_config, run_ablate

pytestmark = pytest.mark.slow

FAST = ["steps=600", "eval_every=100", "data.n_train=1024", "data.n_eval=512"]


def summary(sweep: Path) -> list[dict[str, str]]:
    with open(sweep / "summary.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_warmup_study_end_to_end(tmp_path: Path) -> None:
    sweep = tmp_path / "study"
    done = run_ablate("-m", "warmup=0,100,500", *FAST, f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "study: 3 runs (3 ran now, 0 recorded before): 3 completed" in done.stderr
    assert "[#1 warmup=100] completed" in done.stderr  # labels name the factors only
    assert done.stderr.count("] completed, trained: eval/loss") == 3  # one summary line per run off a terminal

    lr_curves = {}
    for warmup in (0, 100, 500):
        run = sweep / f"warmup={warmup}"
        result = read_result(run)
        assert result["status"] == "completed" and result["overrides"] == [f"warmup={warmup}", *FAST]
        assert result["warmup_steps"] == warmup
        assert f"warmup: {warmup}" in (run / "config.yaml").read_text()
        assert result["summary"]["final_eval_acc"] > 0.3, "the default task must train well above chance (0.1)"
        rows = read_metrics(run)
        lr = [r[M.LR] for r in rows if M.LR in r]
        assert lr == pytest.approx(build_schedule(make_config(*FAST, f"warmup={warmup}")).values(), rel=1e-12)
        lr_curves[warmup] = lr
    assert lr_curves[100][0] == pytest.approx(1e-3 / 100) and lr_curves[500][0] == pytest.approx(1e-3 / 500)
    assert lr_curves[0] != lr_curves[100] != lr_curves[500]

    rows = summary(sweep)
    assert [(r["run"], r["warmup"], r["status"]) for r in rows] == [
        ("warmup=0", "0", "completed"),
        ("warmup=100", "100", "completed"),
        ("warmup=500", "500", "completed"),
    ]
    final = read_result(sweep / "warmup=500")["summary"]["final_eval_loss"]
    assert float(rows[2]["final_eval_loss"]) == final

    # Into the same sweep dir with another grid: warmup=0 is done, warmup=50 runs; no stale row, nothing lost.
    old = {w: (sweep / f"warmup={w}" / "result.json").read_text() for w in (0, 100, 500)}
    again = run_ablate("-m", "warmup=0,50", *FAST, f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "2 runs in the grid: 1 skipped (1 completed before); 1 to run (1 new)" in again.stderr
    assert [(r["run"], r["warmup"], r["ran"]) for r in summary(sweep)] == [
        ("warmup=0", "0", "False"),
        ("warmup=50", "50", "True"),
    ]
    assert "2 run record(s) in this directory are not part of this grid" in again.stderr
    assert all((sweep / f"warmup={w}" / "result.json").read_text() == text for w, text in old.items())
    assert not list(sweep.rglob("superseded"))


def test_a_failed_run_does_not_stop_the_study(tmp_path: Path) -> None:
    sweep = tmp_path / "study"
    done = run_ablate(
        "-m",
        "fail_at_step=-1,5",
        "optimizer=adam,sgd",
        "steps=30",
        "eval_every=10",
        f"hydra.sweep.dir={sweep}",
        cwd=tmp_path,
    )
    assert done.returncode == 1
    rows = summary(sweep)
    assert sorted(r["status"] for r in rows) == ["completed", "completed", "failed", "failed"]
    assert "study: 4 runs (4 ran now, 0 recorded before): 2 completed, 2 failed" in done.stderr
    assert "  failed: fail_at_step=5,optimizer=adam: RuntimeError: fail_at_step=5: deliberate failure" in done.stderr
    assert "[#3 fail_at_step=5 optimizer=sgd] failed: RuntimeError: fail_at_step=5" in done.stderr
    assert read_result(sweep / "fail_at_step=5,optimizer=sgd")["summary"]["steps_completed"] == 5
    assert "Traceback" not in done.stderr


def test_skew_study_records_group_wise_metrics(tmp_path: Path) -> None:
    sweep = tmp_path / "study"
    done = run_ablate(
        "-m",
        "skew=none,cluster,spurious",
        "warmup=0,50",
        "steps=200",
        "eval_every=25",
        "skew.steps=100",
        "data.n_train=2048",
        "data.n_eval=512",
        f"hydra.sweep.dir={sweep}",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    rows = summary(sweep)
    assert [(r["skew"], r["warmup"]) for r in rows] == [
        (k, w) for k in ("none", "cluster", "spurious") for w in ("0", "50")
    ]
    for row in rows:
        metrics = read_metrics(sweep / row["run"])
        final = metrics[-1]
        assert {M.EVAL_EARLY_LOSS, M.EVAL_EARLY_ACC, M.EVAL_REST_LOSS, M.EVAL_REST_ACC} <= set(final)
        assert (M.EVAL_CUE_FLIPPED_ACC in final) == (row["skew"] == "spurious")
        s = read_result(sweep / row["run"])["summary"]
        assert s["skew_end_step"] == 100 and s["skew_gap_end"] is not None
        assert (s["cue_reliance_end"] is not None) == (row["skew"] == "spurious")
    gap = {(r["skew"], r["warmup"]): float(r["skew_gap_end"]) for r in rows}
    assert gap[("cluster", "0")] > gap[("none", "0")] + 0.2  # the skewed run favours its early group
