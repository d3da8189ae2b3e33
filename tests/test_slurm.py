"""Studies through ``hydra/launcher=slurm`` on a real SLURM cluster: a normal study, a run cancelled with
``scancel`` and a run that exceeds its time limit, both recorded and then completed by a resume.

Needs a cluster: ``scripts/slurm_cluster.sh start`` (``.ci/run`` does it) and ``SLURM_CONF`` exported. Without
one the tests are skipped, except under CI (``CI=true``), where a missing cluster is a failure.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ablate.status import render
from tests.conftest import REPO

pytestmark = [pytest.mark.slow, pytest.mark.slurm]

HAVE_SLURM = bool(os.environ.get("SLURM_CONF")) and shutil.which("sbatch") is not None
if not HAVE_SLURM:
    if os.environ.get("CI") == "true":
        raise RuntimeError("CI must run the SLURM tests: start the cluster (scripts/slurm_cluster.sh start)")
    pytest.skip("no SLURM cluster (start one with scripts/slurm_cluster.sh start)", allow_module_level=True)

# one CPU per job and one torch thread per run (cpu_threads): two jobs at once fit the 2-core node
SLURM = ("hydra/launcher=slurm", "hydra.launcher.cpus_per_task=1", "cpu_threads=1", "hydra.launcher.mem_gb=1")
RUN = ("tracker=local", "tracker.progress=line", "data.n_train=512", "data.n_eval=256", "eval_every=500")


def ablate(*args: str, cwd: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "WANDB_MODE": "offline", "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-m", "ablate", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finish(proc: subprocess.Popen[str], timeout: float) -> tuple[int, str]:
    out, _ = proc.communicate(timeout=timeout)
    return proc.returncode, out


def result(run_dir: Path) -> dict:
    return json.loads((run_dir / "result.json").read_text())


def wait_for_training(run_dir: Path, proc: subprocess.Popen[str], timeout: float = 180) -> dict:
    """Wait until the run's SLURM job is training (its record says running and metrics are flowing)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (run_dir / "metrics.jsonl").exists() and (run_dir / "metrics.jsonl").stat().st_size > 2000:
            return result(run_dir)
        if proc.poll() is not None:
            pytest.fail(f"the study ended before the run trained:\n{proc.stdout.read() if proc.stdout else ''}")
        time.sleep(0.5)
    proc.kill()
    pytest.fail("the run never started training")


def sacct_state(job_id: str) -> str:
    out = subprocess.run(["sacct", "-n", "-X", "-j", job_id, "-o", "State%30"], capture_output=True, text=True)
    return out.stdout.strip()


@pytest.fixture(scope="module")
def steps_per_s(tmp_path_factory: pytest.TempPathFactory) -> float:
    """A normal study through SLURM (two runs at once); its speed sizes the runs of the kill tests."""
    cwd = tmp_path_factory.mktemp("slurm-basic")
    code, out = finish(ablate("-m", "warmup=0,10", "steps=2000", *RUN, *SLURM, "study=basic", cwd=cwd), 300)
    assert code == 0, out
    study = cwd / "outputs/studies/basic"
    records = [result(study / f"warmup={w}") for w in (0, 10)]
    assert [r["status"] for r in records] == ["completed", "completed"]
    assert all(r["provenance"]["slurm_job_id"] for r in records)  # each ran inside a SLURM job
    assert len({r["provenance"]["slurm_job_id"] for r in records}) == 2
    assert "study: 2 runs (2 ran now, 0 recorded before): 2 completed" in out
    lines = [json.loads(line) for line in (study / "warmup=0" / "metrics.jsonl").open()]
    step_s = [line["sys/step_time"] for line in lines if "sys/step_time" in line]
    return len(step_s) / sum(step_s)  # updates per second of pure training: an upper bound on a run's speed


def test_study_runs_through_slurm(steps_per_s: float) -> None:
    assert steps_per_s > 0


def test_a_stacked_study_submits_one_job_per_stack(tmp_path: Path) -> None:
    """``stack_size=3``: 6 compatible runs make 2 stacks, so 2 SLURM jobs; each member writes its own record."""
    args = ("-m", "seed=0,1,2", "warmup=0,10", "steps=100", *RUN, *SLURM, "hydra.launcher.stack_size=3", "study=st")
    code, out = finish(ablate(*args, cwd=tmp_path), 300)
    assert code == 0, out
    assert "stacks: 6 runs in 2 stack(s) (2 x 3 members)" in out
    study = tmp_path / "outputs/studies/st"
    records = [result(study / f"seed={s},warmup={w}") for s in (0, 1, 2) for w in (0, 10)]
    assert all(r["status"] == "completed" for r in records)
    assert all(r["provenance"]["stacked"]["members"] == 3 for r in records)
    assert len({r["provenance"]["slurm_job_id"] for r in records}) == 2  # one SLURM job per stack
    assert "study: 6 runs (6 ran now, 0 recorded before): 6 completed" in out


def test_scancel_is_recorded_and_completed_by_a_resume(tmp_path: Path, steps_per_s: float) -> None:
    steps = int(steps_per_s * 20)  # > 20 s of training: cancelled a few seconds in
    args = ("-m", f"steps=100,{steps}", *RUN, *SLURM, "study=cancel")
    proc = ablate(*args, cwd=tmp_path)
    study = tmp_path / "outputs/studies/cancel"
    running = wait_for_training(study / f"steps={steps}", proc)
    job = running["provenance"]["slurm_job_id"]
    # USR2 (submitit's time-limit warning, if a user sets hydra.launcher.signal_delay_s) only warns
    subprocess.run(["scancel", "--signal=USR2", job], check=True)
    lines = (study / f"steps={steps}" / "metrics.jsonl").stat().st_size
    time.sleep(2)
    assert (study / f"steps={steps}" / "metrics.jsonl").stat().st_size > lines, "USR2 stopped the run"
    assert result(study / f"steps={steps}")["status"] == "running"
    subprocess.run(["scancel", job], check=True)
    code, out = finish(proc, 180)
    assert code == 1, out  # the study reports the cancelled run and exits non-zero
    cancelled = result(study / f"steps={steps}")
    assert cancelled["status"] == "failed" and cancelled["error"].startswith("terminated by SIGTERM"), cancelled
    assert result(study / "steps=100")["status"] == "completed"  # the other run is untouched
    assert "CANCELLED" in sacct_state(job)
    assert "1 completed, 1 failed" in render(study).splitlines()[0].replace("done", "completed")

    code, out = finish(ablate(*args, cwd=tmp_path), 300)
    assert code == 0, out
    assert "2 runs in the grid: 1 skipped (1 completed before); 1 to run (1 failed before)" in out
    assert result(study / f"steps={steps}")["status"] == "completed"


def test_time_limit_is_recorded_and_completed_by_a_resume(tmp_path: Path, steps_per_s: float) -> None:
    # ~180 s at the measured speed: well past the 1-minute limit plus SLURM's 30 s enforcement interval, even if
    # the speed was measured while the machine was busier than it is now
    steps = int(steps_per_s * 180)
    run = ("-m", f"steps={steps}", *RUN, *SLURM, "study=timeout")
    proc = ablate(*run, "hydra.launcher.timeout_min=1", cwd=tmp_path)
    study = tmp_path / "outputs/studies/timeout"
    job = wait_for_training(study / "run", proc)["provenance"]["slurm_job_id"]
    code, out = finish(proc, 300)
    assert code == 1, out
    timed_out = result(study / "run")
    assert timed_out["status"] in ("failed", "running"), timed_out  # SIGTERM recorded, or SIGKILL left "running"
    assert 0 < len((study / "run" / "metrics.jsonl").read_text().splitlines()) < steps
    assert "TIMEOUT" in sacct_state(job)
    assert f"SLURM job {job} ended as" in out or "terminated by SIGTERM" in out
    assert "USR2" not in (study / ".submitit" / job / f"{job}_0_log.err").read_text()  # the preset asks for none

    # the time limit is a launcher setting, not part of the run's identity: the resume runs the same run
    code, out = finish(ablate(*run, "hydra.launcher.timeout_min=10", cwd=tmp_path), 400)
    assert code == 0, out
    assert "1 to run (1 failed before)" in out or "1 to run (1 killed before)" in out
    assert result(study / "run")["status"] == "completed"
