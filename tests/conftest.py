"""Shared helpers: compose real configs in-process, and run the real command in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ablate.cli.compose import compose_config
from ablate.config import Config

REPO = Path(__file__).resolve().parent.parent


def make_config(*overrides: str) -> Config:
    """A validated typed config, exactly as ``python -m ablate <overrides>`` would build it."""
    return compose_config(list(overrides))


def run_ablate(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """``python -m ablate <args>`` in a fresh process, as a user runs it (no terminal: one line per run)."""
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true", "WANDB_ERROR_REPORTING": "false"}
    env.pop("HYDRA_FULL_ERROR", None)
    return subprocess.run(
        [sys.executable, "-m", "ablate", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture
def small() -> tuple[str, ...]:
    """Overrides for a run that takes well under a second."""
    return ("steps=40", "eval_every=10", "tracker.progress=off", "data.n_train=512", "data.n_eval=256")
