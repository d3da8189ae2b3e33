"""Every named study in ``sweeps/`` runs (``--smoke``: 3 updates per run), so none can rot."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from ablate.cli import SWEEPS_DIR, sweep_options
from tests.conftest import run_ablate

NAMES = sweep_options()


def test_every_study_file_says_what_it_asks_and_names_its_study() -> None:
    assert NAMES, "sweeps/ holds the named studies"
    for name in NAMES:
        text = (SWEEPS_DIR / f"{name}.yaml").read_text()
        assert text.startswith("# @package _global_\n"), name
        assert "Read:" in text and "Runs:" in text, f"{name}: say what the study asks and how to read it"
        cfg = OmegaConf.load(SWEEPS_DIR / f"{name}.yaml")
        assert cfg.study == name, f"sweeps/{name}.yaml must set study: {name} (its stable directory)"
        assert cfg.hydra.sweeper.params, name


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_study_runs_in_smoke_mode(name: str, tmp_path: Path) -> None:
    done = run_ablate("-m", f"+sweep={name}", "--smoke", "tracker.progress=off", cwd=tmp_path, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    study = tmp_path / "outputs" / "studies" / "smoke" / name
    with open(study / "summary.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert rows and all(r["status"] in ("completed", "diverged") for r in rows), rows
    assert all(r["steps_completed"] in ("1", "2", "3") for r in rows)
