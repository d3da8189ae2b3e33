"""Seeding, torch threads, device choice and provenance (commit, versions, host) of a run."""

from __future__ import annotations

import hashlib
import os
import platform
import random
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

PACKAGE_DIR = Path(__file__).resolve().parent


def derive_seed(seed: int, purpose: str) -> int:
    """An independent 63-bit seed for one purpose (``"init"``, ``"order"``, ...) of a run seed.

    Separate streams keep the batch order of a seed identical whatever the optimizer or warmup does with the
    model, so runs that differ only in those factors see exactly the same batches and can be paired.
    """
    digest = hashlib.sha256(f"{seed}:{purpose}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch global generators (the run also uses explicit per-purpose generators)."""
    random.seed(seed)
    np.random.seed(derive_seed(seed, "numpy") % 2**32)
    torch.manual_seed(derive_seed(seed, "torch"))


def pick_device(name: str) -> torch.device:
    """``auto`` -> the current CUDA device when one is present, else the CPU; otherwise ``torch.device(name)``."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device={name} was asked for but CUDA is not available here; use device=auto or cpu")
    return device


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", "-C", str(PACKAGE_DIR), *args], capture_output=True, text=True, timeout=10, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def slurm_job_id() -> str | None:
    """This process's SLURM job as ``scancel``/``sacct`` name it: ``<array job>_<task>`` in an array (the bare
    ``SLURM_JOB_ID`` of a task can equal the array's id, which names every task), else ``SLURM_JOB_ID``."""
    array, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    return f"{array}_{task}" if array and task else os.environ.get("SLURM_JOB_ID")


def set_threads(cpu_threads: int) -> None:
    """Run on exactly ``cpu_threads`` torch threads, whichever launcher started the process.

    The thread count is part of a run's config and identity: CPU reductions split over a different number of
    threads differ in the last bits (1 vs 2 threads: 634 of 1001 metric lines differ at ~1e-7), so the same
    ``run_id`` means bitwise-identical metrics only at the same count. A SLURM allocation with fewer CPUs
    than that gets a warning (oversubscribed cores slow small models down by 10x and more).
    """
    cpus = os.environ.get("SLURM_CPUS_PER_TASK")
    if cpus and cpus.isdigit() and int(cpus) < cpu_threads:
        print(
            f"warning: cpu_threads={cpu_threads} but SLURM gave this job {cpus} CPU(s); ask for "
            f"hydra.launcher.cpus_per_task={cpu_threads} or set cpu_threads={cpus}",
            file=sys.stderr,
        )
    if torch.get_num_threads() != cpu_threads:
        torch.set_num_threads(cpu_threads)


def provenance(device: torch.device) -> dict[str, Any]:
    """Where and with what a run ran: git commit and dirty flag of ablate's source, versions, host, device."""
    import hydra

    commit = _git("rev-parse", "HEAD")
    status = _git("status", "--porcelain", "--untracked-files=no") if commit else None
    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    return {
        "git_commit": commit,
        "git_dirty": bool(status) if status is not None else None,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "hydra": hydra.__version__,
        "numpy": np.__version__,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "platform": platform.platform(),
        "device": str(device),
        "device_name": device_name,
        "torch_threads": torch.get_num_threads(),
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),  # the GPU a launcher gave this job
        "slurm_job_id": slurm_job_id(),
        "argv": sys.argv,
    }
