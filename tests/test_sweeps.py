"""Every named study in ``sweeps/`` runs (``--smoke``: 3 updates per run), so none can rot."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from ablate.cli.overrides import sweep_options
from ablate.config import SWEEPS_DIR
from tests.conftest import run_ablate

NAMES = sweep_options()
# One seed per study: ``seed=0`` on the command line wins over the study's ``seed: range(...)`` (Hydra's sweeper
# keeps the last override of a key), so each smoke study runs its grid of every other factor once, not 3-5 times.
# A seed is an integer that changes no other key and no check, so the points left out are the same configs.
ONE_SEED = "seed=0"


def test_every_study_file_says_what_it_asks_and_names_its_study() -> None:
    assert NAMES, "sweeps/ holds the named studies"
    for name in NAMES:
        text = (SWEEPS_DIR / f"{name}.yaml").read_text()
        assert text.startswith("# @package _global_\n"), name
        assert "Read:" in text and "Runs:" in text, f"{name}: say what the study asks and how to read it"
        cfg = OmegaConf.load(SWEEPS_DIR / f"{name}.yaml")
        assert cfg.study == name, f"sweeps/{name}.yaml must set study: {name} (its stable directory)"
        assert cfg.hydra.sweeper.params, name


@pytest.fixture(scope="module")
def smoke_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("smoke")


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_study_runs_in_smoke_mode(name: str, smoke_dir: Path) -> None:
    done = run_ablate("-m", f"+sweep={name}", "--smoke", "tracker.progress=off", ONE_SEED, cwd=smoke_dir, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    study = smoke_dir / "outputs" / "studies" / "smoke" / name
    with open(study / "summary.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert rows and all(r["status"] in ("completed", "diverged") for r in rows), rows
    assert all(r["steps_completed"] in ("1", "2", "3") for r in rows)


@pytest.mark.slow
def test_findings_document_builds_from_the_smoke_studies(smoke_dir: Path) -> None:
    """``python -m analysis.claims --no-run`` on the smoke studies: every claim gets a section with a verdict."""
    from analysis.claims import CLAIMS, write_findings

    if not all((smoke_dir / "outputs" / "studies" / "smoke" / name).exists() for name in NAMES):
        pytest.skip("needs the smoke studies of this module")
    out = write_findings(smoke_dir / "docs", smoke_dir / "outputs" / "studies" / "smoke")
    text = out.read_text()
    for claim in CLAIMS:
        assert f"## Claim {claim.key}: " in text
    assert text.count("**Verdict: ") == len(CLAIMS)
    assert "## Tuning: the well-tuned learning rates" in text
