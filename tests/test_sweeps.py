"""Every named study in ``sweeps/`` runs (``--smoke``: 3 updates per run, one seed), so none can rot."""

from __future__ import annotations

import csv
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from ablate.cli.overrides import sweep_options
from ablate.config import SWEEPS_DIR
from ablate.study.grid import LARGE_GRID, grid_size
from tests.conftest import run_ablate

NAMES = sweep_options()

# The smoke runs use one seed: ``seed=0`` on the command line wins over the study's ``seed: range(0,n)`` (Hydra's
# sweeper keeps the last override of a key), so each study runs its whole grid of every other factor once instead
# of 3 or 5 times. The sweeper then validates that grid, one seed, before any run. That is enough: a seed sets no
# other key and its only check is seed >= 0, so the other seeds' points are the same configs with another
# non-negative integer and are valid exactly when these are. The one thing the seeds change, whether the full grid
# is small enough to start without --yes, is checked on the study files below.
ONE_SEED = "seed=0"


def grid_points(name: str, *overrides: str) -> int:
    """How many runs ``python -m ablate -m +sweep=<name> <overrides>`` has, counted as the sweeper counts them."""
    params = OmegaConf.load(SWEEPS_DIR / f"{name}.yaml").hydra.sweeper.params
    lines = [f"{key}={value}" for key, value in params.items()] + list(overrides)
    return grid_size(OverridesParser.create().parse_overrides(lines))


def test_every_study_file_says_what_it_asks_and_names_its_study() -> None:
    assert NAMES, "sweeps/ holds the named studies"
    for name in NAMES:
        text = (SWEEPS_DIR / f"{name}.yaml").read_text()
        assert text.startswith("# @package _global_\n"), name
        assert "Read:" in text and "Runs:" in text, f"{name}: say what the study asks and how to read it"
        cfg = OmegaConf.load(SWEEPS_DIR / f"{name}.yaml")
        assert cfg.study == name, f"sweeps/{name}.yaml must set study: {name} (its stable directory)"
        assert cfg.hydra.sweeper.params, name
        assert "seed" in cfg.hydra.sweeper.params, f"{name}: seeds are the replicates the claims pair"
        assert grid_points(name) <= LARGE_GRID, f"{name}: above {LARGE_GRID} runs a study must be started with --yes"


@pytest.fixture(scope="module")
def smoke_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("smoke")


def smoke_args(name: str) -> tuple[str, ...]:
    # cpu_threads=1: two studies at a time on CI's 2 cores, one torch thread each. Two threads per run with
    # another process busy (the other study, or anything else on the machine) made the runs 3-5x slower
    return ("-m", f"+sweep={name}", "--smoke", "tracker.progress=off", ONE_SEED, "cpu_threads=1")


def studies_needed(items: list[pytest.Item]) -> list[str]:
    """The studies this session's tests of this module read: all of them for the findings document, else those
    whose smoke test was selected; largest grid first, so that the two at a time end together."""
    names: set[str] = set()
    for item in items:
        test = getattr(item, "originalname", "")
        if test == "test_findings_document_builds_from_the_smoke_studies":
            names.update(NAMES)
        elif test == "test_study_runs_in_smoke_mode":
            names.add(item.callspec.params["name"])  # type: ignore[attr-defined]
    return sorted(names, key=lambda name: -grid_points(name, ONE_SEED))


@pytest.fixture(scope="module")
def smoke_runs(request: pytest.FixtureRequest, smoke_dir: Path) -> dict[str, subprocess.CompletedProcess[str]]:
    """Each needed study's ``python -m ablate -m +sweep=<name> --smoke seed=0``, a real command (Hydra's multirun,
    ablate's sweeper) in its own process, two at a time, into one directory as a user's smoke studies go."""
    names = studies_needed(request.session.items)
    with ThreadPoolExecutor(max_workers=2) as pool:
        done = pool.map(lambda name: run_ablate(*smoke_args(name), cwd=smoke_dir, timeout=900), names)
        return dict(zip(names, done, strict=True))


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_study_runs_in_smoke_mode(
    name: str, smoke_dir: Path, smoke_runs: dict[str, subprocess.CompletedProcess[str]]
) -> None:
    done = smoke_runs[name]
    assert done.returncode == 0, done.stderr[-3000:]
    points = grid_points(name, ONE_SEED)
    assert f"study: {points} runs in the grid: 0 skipped; {points} to run ({points} new)" in done.stderr, done.stderr
    study = smoke_dir / "outputs" / "studies" / "smoke" / name
    with open(study / "summary.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == points and all(r["seed"] == "0" for r in rows), rows  # every other point, one seed
    assert all(r["status"] in ("completed", "diverged") for r in rows), rows
    assert all(r["steps_completed"] in ("1", "2", "3") for r in rows)


@pytest.mark.slow
def test_findings_document_builds_from_the_smoke_studies(
    smoke_dir: Path, smoke_runs: dict[str, subprocess.CompletedProcess[str]]
) -> None:
    """``python -m analysis.claims --no-run`` on the smoke studies: every claim gets a section with a verdict (with
    one seed a verdict may only say that it cannot tell: the section and its verdict line are what is checked)."""
    from analysis.claims import CLAIMS, write_findings

    assert all(smoke_runs[name].returncode == 0 for name in NAMES), "the smoke studies failed: see their tests"
    out = write_findings(smoke_dir / "docs", smoke_dir / "outputs" / "studies" / "smoke")
    text = out.read_text()
    for claim in CLAIMS:
        assert f"## Claim {claim.key}: " in text
    assert text.count("**Verdict: ") == len(CLAIMS)
    assert "## Tuning: the well-tuned learning rates" in text
