"""Resumable studies with isolated failures, through real ``python -m ablate -m`` processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ablate.status import render
from ablate.study.plan import run_dir_name
from tests.conftest import REPO, run_ablate

pytestmark = pytest.mark.slow

FAST = ("tracker=local", "tracker.progress=off", "data.n_train=512", "data.n_eval=256", "eval_every=10")


def results(study: Path) -> dict[str, dict]:
    """Run directory name -> its result.json, for every current record of the study."""
    return {
        str(p.parent.relative_to(study)): json.loads(p.read_text())
        for p in study.rglob("result.json")
        if "superseded" not in p.parts
    }


def ran_in_last_multirun(study: Path) -> set[str]:
    stamp = json.loads((study / "study.json").read_text())
    return {run for run, r in results(study).items() if r["study"]["multirun_id"] == stamp["multirun_id"]}


def test_failures_are_isolated_and_a_rerun_runs_only_failed_and_new_points(tmp_path: Path) -> None:
    # diverge_window=1: lr=1e30 diverges at its first spike (step 1), before the error at step 5
    grid = ("optimizer=sgd", "lr=0.1,1e30", "fail_at_step=-1,5", "steps=30", "diverge_window=1", *FAST, "study=s")
    first = run_ablate("-m", *grid, cwd=tmp_path)
    study = tmp_path / "outputs" / "studies" / "s"
    assert first.returncode == 1, first.stderr  # a run failed: the study says so
    statuses = {run: r["status"] for run, r in results(study).items()}
    assert statuses == {
        "lr=0.1,fail_at_step=-1": "completed",
        "lr=1e+30,fail_at_step=-1": "diverged",
        "lr=0.1,fail_at_step=5": "failed",
        "lr=1e+30,fail_at_step=5": "diverged",  # diverges at step 1, before the error at step 5
    }
    assert "study: 4 runs (4 ran now, 0 recorded before): 1 completed, 2 diverged, 1 failed" in first.stderr
    assert "failed: lr=0.1,fail_at_step=5: RuntimeError: fail_at_step=5" in first.stderr
    done_before = {run: (study / run / "result.json").read_bytes() for run, s in statuses.items() if s != "failed"}

    # the same command with a second seed: only the failed point and the four new ones run
    again = run_ablate("-m", *grid, "seed=0,1", cwd=tmp_path)
    assert again.returncode == 1, again.stderr
    assert (
        "8 runs in the grid: 3 skipped (1 completed before, 2 diverged before); 5 to run (1 failed before, 4 new)"
        in (again.stderr)
    )
    ran = ran_in_last_multirun(study)
    assert len(ran) == 5 and "lr=0.1,fail_at_step=5" in ran
    assert all(run.endswith(",seed=1") for run in ran - {"lr=0.1,fail_at_step=5"})
    for run, content in done_before.items():
        assert (study / run / "result.json").read_bytes() == content, f"{run} was rewritten"
    # the failed record was set aside, not overwritten
    (old,) = (study / "lr=0.1,fail_at_step=5" / "superseded").iterdir()
    assert json.loads((old / "result.json").read_text())["status"] == "failed"
    shown = render(study)
    assert "8 runs: 2 done, 4 diverged, 2 failed" in shown
    assert shown.splitlines()[1].split() == ["lr", "fail_at_step", "seed=0", "seed=1"]

    # --fresh runs every point again and sets every earlier record aside
    fresh = run_ablate("-m", *grid, "--fresh", cwd=tmp_path)
    assert "4 to run (4 fresh)" in fresh.stderr
    assert ran_in_last_multirun(study) == set(statuses)
    assert len(list((study / "lr=0.1,fail_at_step=-1" / "superseded").iterdir())) == 1


def start_study(tmp_path: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "WANDB_MODE": "offline"}
    return subprocess.Popen(
        [sys.executable, "-m", "ablate", *args],
        cwd=tmp_path,
        env={**env, "PYTHONPATH": str(REPO)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def wait_until_training(proc: subprocess.Popen, run_dir: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        metrics = run_dir / "metrics.jsonl"
        if metrics.exists() and metrics.stat().st_size > 20_000:
            return
        time.sleep(0.2)
    proc.kill()
    pytest.fail("the long run never started")


def test_sigterm_is_recorded_before_the_study_stops(tmp_path: Path) -> None:
    proc = start_study(tmp_path, "-m", "steps=4000", *FAST, "study=t")
    run_dir = tmp_path / "outputs" / "studies" / "t" / "run"
    wait_until_training(proc, run_dir)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 143, stderr
    assert "resume with the same command" in stderr and "Traceback" not in stderr
    result = json.loads((run_dir / "result.json").read_text())
    assert result["status"] == "failed" and result["error"].startswith("terminated by SIGTERM")
    assert 0 < result["summary"]["steps_completed"] < 4000


def test_a_killed_run_is_recorded_as_such_and_rerun_on_resume(tmp_path: Path) -> None:
    args = ("-m", "steps=20,4000", "warmup=0", *FAST, "study=k")
    proc = start_study(tmp_path, *args)
    study = tmp_path / "outputs" / "studies" / "k"
    long_run = study / "steps=4000"
    wait_until_training(proc, long_run)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    short = (study / "steps=20" / "result.json").read_bytes()
    assert json.loads(short)["status"] == "completed"
    assert json.loads((long_run / "result.json").read_text())["status"] == "running"
    shown = render(study)
    assert "2 runs: 1 done, 1 killed" in shown

    again = run_ablate(*args, cwd=tmp_path, timeout=600)
    assert again.returncode == 0, again.stderr
    assert "2 runs in the grid: 1 skipped (1 completed before); 1 to run (1 killed before)" in again.stderr
    assert (study / "steps=20" / "result.json").read_bytes() == short
    assert json.loads((long_run / "result.json").read_text())["status"] == "completed"
    (killed,) = (long_run / "superseded").iterdir()
    assert json.loads((killed / "result.json").read_text())["status"] == "running"


def test_run_directory_names_are_stable_and_safe() -> None:
    assert run_dir_name(["warmup=100", "seed=3", "steps=50"], ["warmup", "seed"]) == "warmup=100,seed=3"
    assert run_dir_name(["+optimizer.beta2=0.99"], ["optimizer.beta2"]) == "optimizer.beta2=0.99"
    assert run_dir_name(["model.hidden_sizes=[64,64]"], ["model.hidden_sizes"]) == "model.hidden_sizes=_64_64_"
    assert run_dir_name(["steps=50"], []) == "run"
    long = run_dir_name([f"k{i}=value{i}" for i in range(20)], [f"k{i}" for i in range(20)])
    assert len(long) <= 110 and long == run_dir_name(
        [f"k{i}=value{i}" for i in range(20)], [f"k{i}" for i in range(20)]
    )


def test_study_report_counts_runs_without_a_record_as_neither_ran_nor_recorded() -> None:
    from ablate.study.directory import report

    rows = [
        {"run": "warmup=0", "status": "completed", "ran": True},
        {"run": "warmup=10", "status": "completed", "ran": False},
        {"run": "warmup=100", "status": "failed", "ran": True, "error": "ValueError: bad"},
        {"run": "warmup=500", "status": "missing", "ran": False},
    ]
    text = report(rows, [], Path("summary.csv")).splitlines()
    assert text[0] == "study: 4 runs (2 ran now, 1 recorded before): 2 completed, 1 failed, 1 missing"
    assert text[1] == "  failed: warmup=100: ValueError: bad"
    assert text[2].startswith("  missing: warmup=500: no run record")
    assert text[-1] == "summary: summary.csv"
