"""The real command: ``python -m ablate -m warmup=0,100,500`` in a subprocess, and a study with a failure."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from ablate import metrics as M
from ablate.schedules import build_schedule
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
    assert "study: 3 runs: 3 completed" in done.stderr
    assert "[#1 warmup=100] completed" in done.stderr  # labels name the factors only
    assert done.stderr.count("] completed: eval/loss") == 3  # one summary line per run off a terminal

    lr_curves = {}
    for job, warmup in enumerate((0, 100, 500)):
        result = read_result(sweep / str(job))
        assert result["status"] == "completed" and result["overrides"] == [f"warmup={warmup}", *FAST]
        assert result["warmup_steps"] == warmup
        assert f"warmup: {warmup}" in (sweep / str(job) / "config.yaml").read_text()
        assert result["summary"]["final_eval_acc"] > 0.3, "the default task must train well above chance (0.1)"
        rows = read_metrics(sweep / str(job))
        lr = [r[M.LR] for r in rows if M.LR in r]
        assert lr == pytest.approx(build_schedule(make_config(*FAST, f"warmup={warmup}")).values(), rel=1e-12)
        lr_curves[warmup] = lr
    assert lr_curves[100][0] == pytest.approx(1e-3 / 100) and lr_curves[500][0] == pytest.approx(1e-3 / 500)
    assert lr_curves[0] != lr_curves[100] != lr_curves[500]

    rows = summary(sweep)
    assert [(r["run"], r["warmup"], r["status"]) for r in rows] == [
        ("0", "0", "completed"),
        ("1", "100", "completed"),
        ("2", "500", "completed"),
    ]
    assert float(rows[2]["final_eval_loss"]) == read_result(sweep / "2")["summary"]["final_eval_loss"]

    # Into the same sweep dir with a smaller grid: no stale row, nothing lost.
    old_job2 = (sweep / "2" / "result.json").read_text()
    again = run_ablate("-m", "warmup=0,50", *FAST, f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert [(r["run"], r["warmup"]) for r in summary(sweep)] == [("0", "0"), ("1", "50")]
    assert "1 run record(s) from an earlier multirun in this directory were left out" in again.stderr
    assert (sweep / "2" / "result.json").read_text() == old_job2
    (superseded,) = (sweep / "1" / "superseded").iterdir()
    assert json.loads((superseded / "result.json").read_text())["overrides"][0] == "warmup=100"


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
    assert "study: 4 runs: 2 completed, 2 failed" in done.stderr
    assert "  failed: run 2: RuntimeError: fail_at_step=5: deliberate failure" in done.stderr
    assert "[#3 fail_at_step=5 optimizer=sgd] failed: RuntimeError: fail_at_step=5" in done.stderr
    assert read_result(sweep / "3")["summary"]["steps_completed"] == 5
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
    for job, row in enumerate(rows):
        metrics = read_metrics(sweep / str(job))
        final = metrics[-1]
        assert {M.EVAL_EARLY_LOSS, M.EVAL_EARLY_ACC, M.EVAL_REST_LOSS, M.EVAL_REST_ACC} <= set(final)
        assert (M.EVAL_CUE_FLIPPED_ACC in final) == (row["skew"] == "spurious")
        s = read_result(sweep / str(job))["summary"]
        assert s["skew_end_step"] == 100 and s["skew_gap_end"] is not None
        assert (s["cue_reliance_end"] is not None) == (row["skew"] == "spurious")
    gap = {(r["skew"], r["warmup"]): float(r["skew_gap_end"]) for r in rows}
    assert gap[("cluster", "0")] > gap[("none", "0")] + 0.2  # the skewed run favours its early group
