"""Several processes on one study: every run trains exactly once, nothing live is moved or overwritten, and a
claim left by a killed process is taken over. Real commands in subprocesses, real locks."""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ablate.record.claims import Claim, is_held, read_info
from ablate.status import render
from tests.conftest import REPO

pytestmark = pytest.mark.slow

FAST = ("tracker=local", "tracker.progress=off", "data.n_train=512", "data.n_eval=256", "eval_every=10")


def start(tmp_path: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "WANDB_MODE": "offline", "PYTHONPATH": str(REPO)}
    env.pop("HYDRA_FULL_ERROR", None)
    return subprocess.Popen(
        [sys.executable, "-m", "ablate", *args],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def wait_for(condition, what: str, timeout_s: float = 120) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}")


def test_a_claim_is_exclusive_and_probing_it_never_takes_it(tmp_path: Path) -> None:
    mine = Claim(tmp_path, "r1")
    assert mine.acquire() and mine.previous == {}
    mine.start(tmp_path / "run")
    assert is_held(tmp_path, "r1") and not is_held(tmp_path, "r2")
    assert not Claim(tmp_path, "r1").acquire(timeout_s=0.1)  # another holder, even in this process
    assert read_info(tmp_path, "r1")["state"] == "running"
    mine.release("completed", tmp_path / "run")
    assert not is_held(tmp_path, "r1")
    again = Claim(tmp_path, "r1")
    assert again.acquire() and again.previous["state"] == "completed" and again.previous["pid"] == os.getpid()
    again.release()  # nothing was run: the info still says how the last attempt ended
    assert read_info(tmp_path, "r1")["state"] == "completed"


def test_two_commands_on_one_study_run_every_run_exactly_once(tmp_path: Path) -> None:
    args = ("-m", "study=both", "warmup=0,10,20", "seed=0,1", "steps=300", *FAST)
    first, second = start(tmp_path, *args), start(tmp_path, *args)
    errs = [p.communicate(timeout=600)[1] for p in (first, second)]
    assert [first.returncode, second.returncode] == [0, 0], errs
    study = tmp_path / "outputs" / "studies" / "both"
    run_dirs = sorted(p.parent for p in study.glob("*/result.json"))
    assert len(run_dirs) == 6
    assert not list(study.rglob("superseded")), "a record was set aside: a run trained twice"
    ran_now = [int(re.search(r"\((\d+) ran now", e).group(1)) for e in errs]  # type: ignore[union-attr]
    assert sum(ran_now) == 6, errs
    pids = set()
    for run_dir in run_dirs:
        result = json.loads((run_dir / "result.json").read_text())
        assert result["status"] == "completed"
        lines = (run_dir / "metrics.jsonl").read_text().splitlines()
        assert [json.loads(line)["step"] for line in lines] == list(range(301))  # one attempt's steps, once
        pids.add(result["provenance"]["pid"])
        assert read_info(study, result["run_id"])["state"] == "completed"
    assert pids <= {first.pid, second.pid}
    for err in errs:  # each command's summary reports all six: its own runs and the other's
        assert "study: 6 runs (" in err and ": 6 completed" in err, err
    with open(study / "summary.csv") as f:
        assert [row["status"] for row in csv.DictReader(f)] == ["completed"] * 6


def test_a_claim_left_by_a_killed_process_is_taken_over(tmp_path: Path) -> None:
    args = ("-m", "study=k", "steps=20,6000", "warmup=0", *FAST)
    proc = start(tmp_path, *args)
    study = tmp_path / "outputs" / "studies" / "k"
    long_run = study / "steps=6000"

    def training() -> bool:
        path = long_run / "metrics.jsonl"
        return path.exists() and path.stat().st_size > 20_000

    wait_for(training, "the long run to train")
    run_id = json.loads((long_run / "result.json").read_text())["run_id"]
    assert is_held(study, run_id) and "running" in render(study)
    assert not Claim(study, run_id).acquire(timeout_s=0.2)  # live: nobody else may take it
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not is_held(study, run_id)  # the kernel let go of the dead process's lock
    assert json.loads((long_run / "result.json").read_text())["status"] == "running"
    assert "2 runs: 1 done, 1 killed" in render(study)

    again = start(tmp_path, *args)
    _, err = again.communicate(timeout=600)
    assert again.returncode == 0, err
    assert "1 to run (1 killed before)" in err
    assert json.loads((long_run / "result.json").read_text())["status"] == "completed"
    assert read_info(study, run_id)["pid"] == again.pid


def test_a_local_launcher_job_killed_is_reported_killed_by_summary_report_and_status(tmp_path: Path) -> None:
    """One classifier for run states: the end-of-study report and summary.csv say what status says."""
    args = ("-m", "study=l", "steps=6000", "warmup=0", "hydra/launcher=local", "hydra.launcher.n_jobs=1", *FAST)
    proc = start(tmp_path, *args)
    run_dir = tmp_path / "outputs" / "studies" / "l" / "run"

    def training() -> bool:
        path = run_dir / "metrics.jsonl"
        return path.exists() and path.stat().st_size > 20_000

    wait_for(training, "the job to train")
    job_pid = json.loads((run_dir / "result.json").read_text())["provenance"]["pid"]
    assert job_pid != proc.pid  # the job runs in its own process
    os.kill(job_pid, signal.SIGKILL)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, err
    assert "1 killed" in err and "killed: run:" in err, err
    with open(run_dir.parent / "summary.csv") as f:
        assert [row["status"] for row in csv.DictReader(f)] == ["killed"]
    assert "1 runs: 1 killed" in render(run_dir.parent)
