"""Which GPU a job gets: one lock file per (GPU, slot), taken while the job runs.

``job.num % n_gpus`` puts two jobs on one GPU as soon as jobs have uneven lengths, and pooled workers keep
the CUDA context of the GPU they first used. Here a job waits for a device that is free at that moment:
``DeviceAllocator.acquire`` takes ``<lock_dir>/gpu<id>.<slot>.lock`` with ``filelock`` (an exclusive ``flock``,
as ``ablate.record.claims`` does) and holds it until the job ends. ``flock`` locks belong to an open file and each try
opens its own ``FileLock``, so they exclude threads of one launcher as well as other studies on the same machine
that share the lock directory, and the kernel drops them when a process dies: a crashed launcher never leaves a
GPU taken. (On a filesystem without ``flock``, ``filelock`` falls back to a marker file that holds the pid.)
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout


def default_lock_dir() -> Path:
    """Per user, shared by every study of that user on this machine."""
    return Path(tempfile.gettempdir()) / f"ablate-gpu-locks-{os.getuid()}"


def visible_gpus(spec: str | list[int] | None = "auto") -> list[str]:
    """The GPU ids jobs may use: ``auto`` = every GPU CUDA sees (``CUDA_VISIBLE_DEVICES`` respected),
    ``none`` = none (CPU workers), or an explicit list such as ``[0, 1]`` / ``"0,1"``."""
    if spec is None or spec == "none":
        return []
    if isinstance(spec, str) and spec != "auto":
        return [part.strip() for part in spec.split(",") if part.strip()]
    if not isinstance(spec, str):
        return [str(g) for g in spec]
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return [part.strip() for part in listed.split(",") if part.strip() and part.strip() != "-1"]
    import torch

    return [str(i) for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []


class DeviceAllocator:
    """Hands out ``devices`` so that no device runs more than ``jobs_per_device`` jobs at once."""

    def __init__(self, devices: list[str], jobs_per_device: int = 1, lock_dir: Path | None = None) -> None:
        if jobs_per_device < 1:
            raise ValueError(f"jobs_per_device={jobs_per_device} is not allowed: it must be >= 1")
        self.devices = devices
        self.jobs_per_device = jobs_per_device
        self.lock_dir = lock_dir or default_lock_dir()
        self.lock_dir.mkdir(parents=True, exist_ok=True)

    def _try(self, device: str, slot: int) -> FileLock | None:
        """The lock of (device, slot) if it was free and is now ours, else None (no waiting)."""
        lock = FileLock(self.lock_dir / f"gpu{device}.{slot}.lock", thread_local=False)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            return None
        return lock

    @contextmanager
    def acquire(self, poll_s: float = 0.05) -> Iterator[str]:
        """Wait for a free (device, slot), yield the device id, and free it when the block ends."""
        while True:
            for slot in range(self.jobs_per_device):  # fill every device once before doubling up
                for device in self.devices:
                    lock = self._try(device, slot)
                    if lock is not None:
                        try:
                            yield device
                        finally:
                            lock.release()
                        return
            time.sleep(poll_s)
