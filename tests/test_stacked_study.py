"""Stacked studies through the real command: the same records as solo runs, a raising stack, kill and resume.

Each test runs ``python -m ablate -m hydra/launcher=stacked ...`` in a fresh process, as a user would.
"""

from __future__ import annotations

import csv
import json
import math
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from ablate.status import render
from tests.conftest import run_ablate
from tests.test_resume import start_study
from tests.test_stacked import RTOL
from tests.wandb_records import read_offline_run

FAST = ("tracker.progress=off", "data.n_train=512", "data.n_eval=256", "eval_every=10", "cpu_threads=1")
STACKED = "hydra/launcher=stacked"


def records(study: Path) -> dict[str, dict[str, Any]]:
    """Run directory name -> its result.json, for every current record of the study."""
    return {
        str(p.parent.relative_to(study)): json.loads(p.read_text())
        for p in study.rglob("result.json")
        if "superseded" not in p.parts
    }


def metric_lines(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def summary_rows(study: Path) -> dict[str, dict[str, str]]:
    with open(study / "summary.csv", newline="") as f:
        return {row["run"]: row for row in csv.DictReader(f)}


def close(a: Any, b: Any, rtol: float = RTOL) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=rtol, abs_tol=1e-9)
    return bool(a == b)


DIVERGING_RTOL = 1e-4  # a diverging run amplifies rounding fastest: its losses of ~1e7 differ by ~3e-6 relative


@pytest.mark.slow
def test_a_stacked_study_writes_the_records_of_the_same_solo_study(tmp_path: Path) -> None:
    """The same grid, sequential and stacked: same run directories, config.yaml byte for byte, result.json with the
    same run_id, status, outcome and summary keys (values to float32 tolerance), metrics.jsonl with the same lines,
    Hydra's job files, one W&B run each, the same summary.csv; provenance says how the run trained."""
    grid = ("-m", "seed=0,1", "warmup=0,10", "lr=1e-3,100", "diverge_window=3", "steps=40", *FAST)
    (tmp_path / "solo").mkdir()
    (tmp_path / "stacked").mkdir()
    solo = run_ablate(*grid, "study=s", cwd=tmp_path / "solo")
    stacked = run_ablate(*grid, STACKED, "study=s", cwd=tmp_path / "stacked")
    assert solo.returncode == 0 and stacked.returncode == 0, stacked.stderr
    assert "stacks: 8 runs in 1 stack(s) (1 x 8 members)" in stacked.stderr
    a, b = tmp_path / "solo/outputs/studies/s", tmp_path / "stacked/outputs/studies/s"
    solo_records, stacked_records = records(a), records(b)
    assert sorted(solo_records) == sorted(stacked_records) and len(solo_records) == 8
    statuses = {run: r["status"] for run, r in stacked_records.items()}
    assert sorted(set(statuses.values())) == ["completed", "diverged"]  # lr=100 diverges: frozen, recorded
    for run, solo_result in solo_records.items():
        result = stacked_records[run]
        assert (a / run / "config.yaml").read_bytes() == (b / run / "config.yaml").read_bytes()
        assert set(result) == set(solo_result)
        for key in ("run_id", "status", "outcome", "label", "overrides", "warmup_steps"):
            assert result[key] == solo_result[key], (run, key)
        assert set(result["summary"]) == set(solo_result["summary"])
        rtol = RTOL if result["status"] == "completed" else DIVERGING_RTOL
        for key, value in solo_result["summary"].items():
            assert close(result["summary"][key], value, rtol), (run, key)
        assert result["provenance"]["stacked"] == {
            "members": 8,
            "position": result["provenance"]["stacked"]["position"],
        }
        assert "stacked" not in solo_result["provenance"]
        solo_lines, lines = metric_lines(a / run), metric_lines(b / run)
        assert [sorted(line) for line in lines] == [sorted(line) for line in solo_lines]
        for line, solo_line in zip(lines, solo_lines, strict=True):
            assert all(close(line[k], v, rtol) for k, v in solo_line.items() if k != "sys/step_time"), run
        assert sorted(p.name for p in (b / run / ".hydra").iterdir()) == ["config.yaml", "hydra.yaml", "overrides.yaml"]
        wandb_run = read_offline_run(b / run)
        assert wandb_run["config"]["run_id"] == result["run_id"] and wandb_run["exit_code"] == 0
        assert len(wandb_run["history"]) == len(read_offline_run(a / run)["history"])
    solo_rows, stacked_rows = summary_rows(a), summary_rows(b)
    assert sorted(solo_rows) == sorted(stacked_rows)
    for run, row in solo_rows.items():
        assert list(stacked_rows[run]) == list(row)
        for key in ("status", "run_id", "outcome", "steps_completed", "diverged_step"):
            assert stacked_rows[run][key] == row[key]
    again = run_ablate(*grid, STACKED, "study=s", cwd=tmp_path / "stacked")  # resume: nothing left to run
    assert "8 runs in the grid: 8 skipped (4 completed before, 4 diverged before); 0 to run" in again.stderr


@pytest.mark.slow
def test_a_stack_that_raises_fails_its_members_and_not_the_other_stacks(tmp_path: Path) -> None:
    done = run_ablate("-m", STACKED, "fail_at_step=-1,5", "seed=0,1", "steps=30", *FAST, "study=f", cwd=tmp_path)
    assert done.returncode == 1, done.stderr  # runs failed: the study says so
    assert "stacks: 4 runs in 2 stack(s) (2 x 2 members)" in done.stderr
    results = records(tmp_path / "outputs/studies/f")
    for run, result in results.items():
        if "fail_at_step=5" in run:
            assert result["status"] == "failed"
            assert result["error"] == "RuntimeError: fail_at_step=5: deliberate failure to test failure handling"
            assert "Traceback" in result["traceback"] and result["summary"]["steps_completed"] == 5
        else:
            assert result["status"] == "completed", run


@pytest.mark.slow
def test_a_killed_stack_leaves_its_members_resumable(tmp_path: Path) -> None:
    """kill -9 mid-way: the member that diverged early keeps its final record; the others say running, and the
    same command runs exactly those again."""
    args = ("-m", STACKED, "lr=1e-3,100", "seed=0,1", "steps=4000", "diverge_window=3", *FAST, "study=k")
    proc = start_study(tmp_path, *args)
    study = tmp_path / "outputs/studies/k"
    deadline = time.monotonic() + 120
    while not all(
        (study / f"lr=0.001,seed={s}" / "metrics.jsonl").exists()
        and (study / f"lr=0.001,seed={s}" / "metrics.jsonl").stat().st_size > 20_000
        for s in (0, 1)
    ):
        assert time.monotonic() < deadline, "the stack never started"
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before = records(study)
    assert {run: r["status"] for run, r in before.items()} == {
        "lr=0.001,seed=0": "running",
        "lr=0.001,seed=1": "running",
        "lr=100,seed=0": "diverged",
        "lr=100,seed=1": "diverged",
    }
    assert "4 runs: 2 diverged, 2 killed" in render(study)
    again = run_ablate(*args, cwd=tmp_path, timeout=600)
    assert again.returncode == 0, again.stderr
    assert "4 runs in the grid: 2 skipped (2 diverged before); 2 to run (2 killed before)" in again.stderr
    after = records(study)
    assert {run: r["status"] for run, r in after.items() if run.startswith("lr=0.001")} == {
        "lr=0.001,seed=0": "completed",
        "lr=0.001,seed=1": "completed",
    }
    assert after["lr=100,seed=0"] == before["lr=100,seed=0"]


def test_stack_size_must_be_a_positive_integer(tmp_path: Path) -> None:
    done = run_ablate("-m", STACKED, "hydra.launcher.stack_size=0", "seed=0,1", "steps=5", *FAST, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: hydra.launcher.stack_size=0 is not allowed: it must be an integer >= 1 (members per stack; 1 trains "
        "every run alone), e.g. hydra.launcher.stack_size=64"
    ]
