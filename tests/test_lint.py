"""The code style checks CI relies on, as part of the test command."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO


def tool(name: str) -> str | None:
    """The dev tool installed beside this Python (the README's venv needs no PATH), else one on PATH."""
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else shutil.which(name)


@pytest.mark.parametrize("args", [["check", "."], ["format", "--check", "."]], ids=["check", "format"])
def test_ruff(args: list[str]) -> None:
    ruff = tool("ruff")
    assert ruff, "ruff is part of the dev extra: pip install -e '.[dev]'"
    done = subprocess.run([ruff, *args], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_mypy() -> None:
    mypy = tool("mypy")
    assert mypy, "mypy is part of the dev extra: pip install -e '.[dev]'"
    packages = [
        "-p",
        "ablate",
        "-p",
        "analysis",
        "-p",
        "hydra_plugins.ablate_sweeper",
        "-p",
        "hydra_plugins.ablate_launcher",
    ]
    done = subprocess.run([mypy, *packages], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
