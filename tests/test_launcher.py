"""The local launcher: GPUs handed out by lock, never two concurrent jobs on one device; real job processes."""

from __future__ import annotations

import json
import multiprocessing
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from ablate.study.devices import DeviceAllocator, visible_gpus
from tests.conftest import run_ablate

Interval = tuple[str, float, float]  # device, start, end


def run_jobs(allocator: DeviceAllocator, n_workers: int, n_jobs: int, seed: int) -> list[Interval]:
    """``n_jobs`` jobs of uneven length (0-20 ms) on ``n_workers`` threads; each holds its device while it runs."""
    rng = random.Random(seed)
    lengths = [rng.uniform(0, 0.02) for _ in range(n_jobs)]
    intervals: list[Interval] = []
    lock = threading.Lock()

    def job(length: float) -> None:
        with allocator.acquire(poll_s=0.001) as device:
            start = time.monotonic()
            time.sleep(length)
            end = time.monotonic()
        with lock:
            intervals.append((device, start, end))

    with ThreadPoolExecutor(n_workers) as pool:
        list(pool.map(job, lengths))
    return intervals


def max_concurrency(intervals: list[Interval]) -> dict[str, int]:
    """Per device, the largest number of jobs running at the same moment."""
    out = {}
    for device in {d for d, _, _ in intervals}:
        events = sorted(
            [(s, 1) for d, s, _ in intervals if d == device] + [(e, -1) for d, _, e in intervals if d == device]
        )
        running = peak = 0
        for _, change in events:  # at equal times the end (-1) sorts first: back-to-back jobs do not overlap
            running += change
            peak = max(peak, running)
        out[device] = peak
    return out


def test_no_two_concurrent_jobs_share_a_device(tmp_path: Path) -> None:
    allocator = DeviceAllocator(["0", "1", "2"], lock_dir=tmp_path)
    intervals = run_jobs(allocator, n_workers=8, n_jobs=60, seed=0)  # more workers than devices: they must wait
    assert len(intervals) == 60
    assert max_concurrency(intervals) == {"0": 1, "1": 1, "2": 1}


def test_jobs_per_device_allows_exactly_that_many(tmp_path: Path) -> None:
    allocator = DeviceAllocator(["0", "1"], jobs_per_device=2, lock_dir=tmp_path)
    peaks = max_concurrency(run_jobs(allocator, n_workers=6, n_jobs=60, seed=1))
    assert set(peaks) == {"0", "1"} and max(peaks.values()) == 2


def _other_study(lock_dir: str, out: str, seed: int) -> None:
    intervals = run_jobs(DeviceAllocator(["0", "1"], lock_dir=Path(lock_dir)), n_workers=3, n_jobs=30, seed=seed)
    Path(out).write_text(json.dumps(intervals))


def test_two_studies_on_one_machine_share_the_locks(tmp_path: Path) -> None:
    """Two launcher processes (two studies) using the same lock directory never put two jobs on one GPU."""
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_other_study, args=(str(tmp_path), str(tmp_path / f"{i}.json"), i)) for i in (0, 1)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    intervals = [tuple(i) for k in (0, 1) for i in json.loads((tmp_path / f"{k}.json").read_text())]
    assert len(intervals) == 60
    assert max_concurrency(intervals) == {"0": 1, "1": 1}  # type: ignore[arg-type]


def _hold_device_until_killed(lock_dir: str, ready: Any) -> None:
    with DeviceAllocator(["0"], lock_dir=Path(lock_dir)).acquire():
        ready.set()
        time.sleep(120)


def test_a_killed_holder_frees_its_device_and_the_lock_is_in_lock_dir(tmp_path: Path) -> None:
    """A launcher killed while its job holds a GPU (kill -9: no clean-up runs) leaves the GPU free."""
    ctx = multiprocessing.get_context("fork")
    ready = ctx.Event()
    holder = ctx.Process(target=_hold_device_until_killed, args=(str(tmp_path), ready))
    holder.start()
    try:
        assert ready.wait(30)
        assert (tmp_path / "gpu0.0.lock").is_file()
        taken = threading.Event()

        def take() -> None:
            with DeviceAllocator(["0"], lock_dir=tmp_path).acquire(poll_s=0.01):
                taken.set()

        threading.Thread(target=take, daemon=True).start()
        assert not taken.wait(0.5)  # the live holder keeps it
    finally:
        holder.kill()
        holder.join(30)
    assert taken.wait(10)  # the kernel dropped the dead holder's lock


def test_visible_gpus_spellings(monkeypatch: pytest.MonkeyPatch) -> None:
    assert visible_gpus("none") == [] and visible_gpus("0,2") == ["0", "2"] and visible_gpus([1, 3]) == ["1", "3"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,5")
    assert visible_gpus("auto") == ["2", "5"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert visible_gpus("auto") == []


@pytest.mark.slow
def test_local_launcher_runs_jobs_in_processes_on_the_gpu_they_were_given(tmp_path: Path) -> None:
    """A real multirun with fake GPU ids on this CPU machine: every job records the device it was handed;
    a failing job does not stop the others."""
    done = run_ablate(
        "-m",
        "warmup=0,5,10",
        "fail_at_step=-1,3",
        "steps=20",
        "tracker=local",
        "tracker.progress=off",
        "data.n_train=256",
        "data.n_eval=128",
        "hydra/launcher=local",
        "hydra.launcher.gpus=[4,7]",
        f"hydra.launcher.lock_dir={tmp_path / 'locks'}",
        "study=gpus",
        cwd=tmp_path,
    )
    assert done.returncode == 1, done.stderr  # three runs failed on purpose
    records = [json.loads(p.read_text()) for p in (tmp_path / "outputs/studies/gpus").glob("*/result.json")]
    assert sorted(r["status"] for r in records) == ["completed"] * 3 + ["failed"] * 3
    devices = [r["provenance"]["cuda_visible_devices"] for r in records]
    assert set(devices) == {"4", "7"}
    assert "Launching 6 jobs on 2 local worker(s), 2 GPU(s) 4,7" in done.stdout  # Hydra logs to stdout
    assert all(r["provenance"]["pid"] != records[0]["provenance"]["pid"] for r in records[1:])  # fresh processes


def test_a_slurm_ended_job_is_explained_by_its_log_tail(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from hydra_plugins.ablate_launcher.slurm_launcher import _log_tail

    log = tmp_path / "20_0_log.err"
    log.write_text("Traceback ...\n  raise UncompletedJobError(message)\nJob not requeued because: timed out.\n\n")
    job = SimpleNamespace(paths=SimpleNamespace(stderr=log))
    assert _log_tail(job) == f" (log {log}: Job not requeued because: timed out.)"
    log.write_text("\n")
    assert _log_tail(job) == f" (log {log}: empty)"
    assert _log_tail(SimpleNamespace(paths=SimpleNamespace(stderr=tmp_path / "absent.err"))) == ""
