"""Faults a study must survive with nothing lost or mislabelled: a disk that fills mid-study, a read-only
output directory, Ctrl-C, and the same run under two launchers. Real commands; real filesystems (a small
tmpfs, mounted as root, as CI runs; skipped where mounting is not allowed)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ablate.status import render
from tests.conftest import REPO, run_ablate

pytestmark = pytest.mark.slow

FAST = ("tracker=local", "tracker.progress=off", "data.n_train=512", "data.n_eval=256", "eval_every=10")


def mount_tmpfs(where: Path, options: str) -> bool:
    where.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True)
    return done.returncode == 0


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB filesystem of its own (tmpfs)."""
    disk = tmp_path / "disk"
    if not mount_tmpfs(disk, "size=4m"):
        pytest.skip("mounting a tmpfs needs root (CI runs as root)")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=False)


def fill(disk: Path, leave_bytes: int) -> Path:
    """Fill ``disk`` up to ``leave_bytes`` free; return the filler file."""
    filler = disk / "filler"
    free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
    with open(filler, "wb") as f:
        f.write(b"\0" * max(0, free - leave_bytes))
    return filler


def test_a_full_disk_is_recorded_and_stops_the_study_with_one_line(small_disk: Path) -> None:
    # ~200 KB free: the study's and the first run's files fit (~100 KB), its metrics (~150 bytes a step) fill the
    # disk mid-run, at about step 700 of 2000 (the resume then trains the three runs in full: keep them short)
    filler = fill(small_disk, leave_bytes=200_000)
    args = ("-m", "study=full", "seed=0,1,2", "steps=2000", "eval_every=50", *FAST)
    first = run_ablate(*args, cwd=small_disk)
    assert first.returncode == 1, first.stderr
    assert "Traceback" not in first.stderr, first.stderr
    last = first.stderr.strip().splitlines()[-2]
    assert last.startswith("error: disk full at ") and "resume with the same command" in last, first.stderr
    study = small_disk / "outputs" / "studies" / "full"
    result = json.loads((study / "seed=0" / "result.json").read_text())
    assert result["status"] == "failed" and "No space left on device" in result["error"], result
    assert 0 < result["summary"]["steps_completed"] < 2000, result  # full mid-run, not before or after it
    assert not (study / "seed=1").exists()  # the study stopped: nothing more was started
    shown = render(study)
    assert "1 failed" in shown and "killed" not in shown, shown

    filler.unlink()  # space again: the same command resumes where it stopped
    again = run_ablate(*args, cwd=small_disk)
    assert again.returncode == 0, again.stderr
    assert "3 to run (1 failed before, 2 new)" in again.stderr
    assert "3 runs: 3 done" in render(study)


def test_a_read_only_output_directory_is_one_line_before_any_run(tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    if not mount_tmpfs(ro, "ro,size=1m"):
        pytest.skip("mounting a tmpfs needs root (CI runs as root)")
    try:
        done = run_ablate("-m", "warmup=0,10", "steps=20", *FAST, cwd=ro)
    finally:
        subprocess.run(["umount", "-l", str(ro)], check=False)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot write the study directory" in lines[0], done.stderr
    assert "Read-only file system" in lines[0]


def test_ctrl_c_prints_one_line_the_summary_and_the_resume_hint(tmp_path: Path) -> None:
    args = ("-m", "study=i", "seed=0,1", "steps=8000", *FAST)
    env = {**os.environ, "WANDB_MODE": "offline", "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "ablate", *args],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    metrics = tmp_path / "outputs" / "studies" / "i" / "seed=0" / "metrics.jsonl"
    deadline = time.monotonic() + 120
    while not (metrics.exists() and metrics.stat().st_size > 20_000) and time.monotonic() < deadline:
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole foreground group
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert lines[-2].startswith("error: interrupted (Ctrl-C); the run in progress is recorded as failed; 2 runs")
    assert lines[-2].endswith("resume with the same command"), err
    assert lines[-1].startswith("summary: ")
    study = tmp_path / "outputs" / "studies" / "i"
    assert (study / "summary.csv").exists()
    result = json.loads((study / "seed=0" / "result.json").read_text())
    assert result["status"] == "failed" and result["error"] == "interrupted (KeyboardInterrupt)"


def test_the_same_run_id_gives_the_same_bits_under_the_sequential_and_the_local_launcher(tmp_path: Path) -> None:
    grid = ("warmup=0,20", "steps=150", *FAST)
    seq = run_ablate("-m", "study=seq", *grid, cwd=tmp_path)
    par = run_ablate("-m", "study=par", *grid, "hydra/launcher=local", "hydra.launcher.n_jobs=2", cwd=tmp_path)
    assert seq.returncode == 0 and par.returncode == 0, seq.stderr + par.stderr
    studies = tmp_path / "outputs" / "studies"
    for run in ("warmup=0", "warmup=20"):
        a, b = (json.loads((studies / s / run / "result.json").read_text()) for s in ("seq", "par"))
        assert a["run_id"] == b["run_id"]
        assert a["provenance"]["pid"] != b["provenance"]["pid"]
        assert a["provenance"]["torch_threads"] == b["provenance"]["torch_threads"] == 2

        def metrics(study: str, run: str = run) -> list[dict]:
            lines = (studies / study / run / "metrics.jsonl").read_text().splitlines()
            return [{k: v for k, v in json.loads(line).items() if not k.startswith("sys/")} for line in lines]

        assert metrics("seq") == metrics("par")  # exact equality: every float, every step
