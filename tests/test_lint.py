"""The code style checks CI relies on, as part of the test command."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.conftest import REPO


@pytest.mark.parametrize("args", [["check", "."], ["format", "--check", "."]], ids=["check", "format"])
def test_ruff(args: list[str]) -> None:
    ruff = shutil.which("ruff")
    assert ruff, "ruff is part of the dev extra: pip install -e '.[dev]'"
    done = subprocess.run([ruff, *args], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_mypy() -> None:
    mypy = shutil.which("mypy")
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
