"""The run record: complete on success, on divergence, on an exception, and readable after SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
import torch

from ablate.record.runner import execute
from ablate.run import metrics as M
from ablate.run.schedules import build_schedule
from analysis.load import read_metrics, read_result
from tests.conftest import make_config


def run(tmp_path: Path, *overrides: str, name: str = "run") -> tuple[str, Path]:
    config = make_config(*overrides)
    run_dir = tmp_path / name
    return execute(config, run_dir, name, list(overrides), {}), run_dir


def strip_time(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if k != M.STEP_TIME} for row in rows]


def test_completed_run_record(tmp_path: Path, small: tuple[str, ...]) -> None:
    status, run_dir = run(tmp_path, *small, "warmup=10")
    assert status == "completed"
    result = read_result(run_dir)
    assert result is not None and result["status"] == "completed"
    assert result["warmup_steps"] == 10 and len(result["run_id"]) == 16
    s = result["summary"]
    assert s["steps_completed"] == 40 and s["diverged_step"] is None
    assert s["final_eval_loss"] is not None and s["best_eval_loss"] <= s["final_eval_loss"]
    p = result["provenance"]
    for key in ("git_commit", "git_dirty", "python", "torch", "hydra", "host", "device"):
        assert key in p
    assert p["device"] == "cpu" and p["torch"] == torch.__version__
    assert result["wall_time_s"] > 0 and result["started_at"] <= result["ended_at"]

    rows = read_metrics(run_dir)
    assert [r["step"] for r in rows] == list(range(41))  # updates 0..39 and the final evaluation at T = 40
    evals = [r["step"] for r in rows if M.EVAL_LOSS in r]
    assert evals == [0, 10, 20, 30, 40]
    assert rows[-1][M.EVAL_LOSS] == s["final_eval_loss"]
    for row in rows[:-1]:
        assert {M.TRAIN_LOSS, M.LR, M.STEP_TIME} <= set(row)
        if row["step"] % make_config().metrics_every == 0:
            assert row[M.GRAD_NORM] > 0 and 0 < row[M.UPDATE_RATIO] < 1 and 0 <= row[M.TRAIN_ACC] <= 1
        else:
            assert not {M.GRAD_NORM, M.UPDATE_RATIO, M.TRAIN_ACC} & set(row)
    schedule = build_schedule(make_config(*small, "warmup=10"))
    assert [r[M.LR] for r in rows[:-1]] == pytest.approx(schedule.values(), rel=1e-12)
    assert (run_dir / "config.yaml").read_text().count("warmup: 10") == 1


def test_metrics_every_step_when_asked(tmp_path: Path, small: tuple[str, ...]) -> None:
    _, run_dir = run(tmp_path, *small, "metrics_every=1")
    rows = read_metrics(run_dir)[:-1]
    assert all(M.GRAD_NORM in r and M.UPDATE_RATIO in r and M.TRAIN_ACC in r for r in rows)


def test_same_config_and_seed_give_identical_metrics(tmp_path: Path, small: tuple[str, ...]) -> None:
    _, a = run(tmp_path, *small, "warmup=5", name="a")
    _, b = run(tmp_path, *small, "warmup=5", name="b")
    _, c = run(tmp_path, *small, "warmup=5", "seed=1", name="c")
    assert strip_time(read_metrics(a)) == strip_time(read_metrics(b))
    assert strip_time(read_metrics(a)) != strip_time(read_metrics(c))


def test_a_run_that_raises_is_recorded_as_failed(tmp_path: Path, small: tuple[str, ...]) -> None:
    status, run_dir = run(tmp_path, *small, "fail_at_step=7")
    assert status == "failed"
    result = read_result(run_dir)
    assert result["status"] == "failed"
    assert result["error"] == "RuntimeError: fail_at_step=7: deliberate failure to test failure handling"
    assert "Traceback (most recent call last)" in result["traceback"] and "train.py" in result["traceback"]
    assert [r["step"] for r in read_metrics(run_dir)] == list(range(7))  # everything before the error is kept


def test_divergence_is_a_result(tmp_path: Path, small: tuple[str, ...]) -> None:
    status, run_dir = run(tmp_path, *small, "optimizer=sgd", "lr=1000")
    assert status == "diverged"
    result = read_result(run_dir)
    s = result["summary"]
    rows = read_metrics(run_dir)
    assert s["diverged_step"] == rows[-1]["step"] == s["steps_completed"] - 1
    assert s["diverged_step"] < 40 and s["final_eval_loss"] is None
    assert "loss" in s["divergence_reason"]


def test_reader_skips_a_partial_last_line(tmp_path: Path) -> None:
    (tmp_path / "metrics.jsonl").write_text('{"step": 0, "train/loss": 2.3}\n{"step": 1, "train/lo')
    with pytest.warns(UserWarning, match=r"metrics.jsonl:2: skipped a line that is not complete JSON"):
        rows = read_metrics(tmp_path)
    assert rows == [{"step": 0, "train/loss": 2.3}]


def test_an_earlier_record_in_the_same_directory_is_set_aside_not_mixed(tmp_path: Path, small) -> None:
    _, run_dir = run(tmp_path, *small, "warmup=3")
    first = (run_dir / "metrics.jsonl").read_text()
    run(tmp_path, *small, "warmup=4")
    assert len(read_metrics(run_dir)) == 41
    (old,) = (run_dir / "superseded").iterdir()
    assert (old / "metrics.jsonl").read_text() == first and (old / "result.json").exists()


@pytest.mark.slow
def test_sigkill_mid_run_leaves_a_readable_record(tmp_path: Path) -> None:
    env = {**os.environ, "WANDB_MODE": "offline"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ablate",
            "steps=1000000",
            "eval_every=1000",
            "tracker.progress=off",
            "hydra.run.dir=run",
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    metrics = tmp_path / "run" / "metrics.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and (not metrics.exists() or metrics.stat().st_size < 200_000):
        time.sleep(0.1)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    text = metrics.read_text()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the last line may be partial
        rows = read_metrics(tmp_path / "run")
    assert len(rows) >= text.count("\n") - 1 and len(rows) > 500
    assert [r["step"] for r in rows] == list(range(len(rows)))
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    assert result["status"] == "running"  # it never finished: a killed run is recognisable
    assert result["provenance"]["pid"] == proc.pid


def test_a_non_finite_final_evaluation_is_recorded_as_divergence(tmp_path: Path) -> None:
    status, run_dir = run(tmp_path, "optimizer=sgd", "lr=1e30", "steps=1", "tracker.progress=off")
    result = read_result(run_dir)
    assert status == result["status"] == "diverged"  # never left saying "running"
    assert result["summary"]["diverged_step"] == 1 and "held-out loss" in result["summary"]["divergence_reason"]
    assert read_metrics(run_dir)[-1]["eval/loss"] is None  # non-finite values are written as null
