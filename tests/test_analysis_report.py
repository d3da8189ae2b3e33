"""``python -m analysis``: a report from a real small study, and one-line errors for bad input."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, run_ablate

pytestmark = pytest.mark.slow

RUN = ("steps=60", "eval_every=10", "data.n_train=512", "data.n_eval=256", "tracker.progress=off", "skew=cluster")


def analysis(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "analysis", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "WANDB_MODE": "offline", "HOME": str(cwd)},
    )


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2 warmups x 2 seeds with the skew on, logged to W&B offline (so the report goes to W&B too)."""
    cwd = tmp_path_factory.mktemp("report")
    done = run_ablate("-m", "warmup=0,20", "seed=0,1", *RUN, "skew.steps=20", "study=r", cwd=cwd)
    assert done.returncode == 0, done.stderr
    return cwd / "outputs/studies/r"


def test_report_from_a_real_study(study: Path) -> None:
    done = analysis(study, cwd=study.parent)
    assert done.returncode == 0, done.stderr
    report = study / "report"
    md = (report / "report.md").read_text()
    assert re.search(r"\| completed \| 4 \| (4 trained|\d trained, \d untrained|4 untrained) \|", md), md
    assert "### Outcomes per cell" in md and "| warmup | runs | trained | untrained | diverged | failed |" in md
    assert "## Learning-rate regime" not in md  # one learning rate: no regime section
    assert "- `warmup`: 0, 20" in md and "- `seed`: 0, 1" in md
    assert re.search(r"1 comparison: 1 (better|worse|no clear difference)", md)
    finding = re.search(
        r"`warmup=20` vs `warmup=0`: final held-out loss \(nats\) (\S+), 95% CI \[(\S+), (\S+)\], 2 seeds", md
    )
    assert finding, md
    effect, low, high = (float(x.rstrip(",")) for x in finding.groups())
    assert low <= effect <= high
    assert "Early over-fitting" in md and "Time to target" in md
    for name in ("convergence", "lr_schedule", "early_overfitting", "time_to_target", "forest"):
        assert (report / "figures" / f"{name}.png").stat().st_size > 5000
        assert f"](figures/{name}.png)" in md
    findings = md.split("## Findings")[1].split("## Figures")[0]
    assert "](figures/forest.png)" in findings  # the forest plot stands with the comparisons it draws
    assert "sensitivity: learning rate does not vary" in md  # said, not silently missing
    page = (report / "report.html").read_text()
    assert page.count('<img alt="') == 5 and page.count("data:image/png;base64,") == 5  # self-contained
    for table in ("runs", "final_eval_loss_by_cell", "final_eval_loss_paired_effects", "divergence_rate"):
        assert (report / "tables" / f"{table}.csv").exists()
    assert "W&B:" in done.stdout and list((report / "wandb").glob("offline-run-*analysis*"))


def test_one_seed_reports_no_interval(study: Path) -> None:
    out = study.parent / "one-seed"
    done = analysis(study, "--out", out, "--wandb", "off", cwd=study.parent)  # both seeds: intervals exist
    assert done.returncode == 0
    one = study.parent / "only-seed0"
    for run in study.glob("warmup=*,seed=0"):
        target = one / run.name
        target.mkdir(parents=True)
        for name in ("config.yaml", "metrics.jsonl", "result.json"):
            (target / name).write_bytes((run / name).read_bytes())
    done = analysis(one, "--wandb", "off", cwd=study.parent)
    assert done.returncode == 0, done.stderr
    md = (one / "report" / "report.md").read_text()
    assert "1 seed; no interval" in md or "cannot tell with one seed" in md
    assert "[0.0" not in md.split("## Findings")[1].split("## Figures")[0]  # no zero-width interval


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["{tmp}"], "is not a study: no run records"),
        (
            ["{study}", "--metric", "final_loss"],
            "--metric final_loss is not a metric of this study; available: final_eval_loss",
        ),
        (["{study}", "--control", "optim=adam"], "optim is not a factor that varies in this study; factors: warmup"),
        (["{study}", "--control", "warmup=7"], "no run has warmup=7; values: 0, 20"),
        (["{study}", "--figures", "curves"], "--figures curves: unknown; figures: convergence"),
        (
            ["{study}", "--colour-by", "optim"],
            "--colour-by optim: not a factor that varies in this study; factors: warmup",
        ),
    ],
)
def test_bad_input_is_one_line(study: Path, tmp_path: Path, args: list[str], message: str) -> None:
    done = analysis(*(a.format(tmp=tmp_path, study=study) for a in args), "--wandb", "off", cwd=tmp_path)
    assert done.returncode == 2
    assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_report_opens_in_a_browser_with_every_image_shown(study: Path, tmp_path: Path) -> None:
    """Headless Chromium loads report.html; a probe script counts the images that decoded (naturalWidth > 0)."""
    import os
    import shutil

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        if os.environ.get("CI") == "true":
            raise RuntimeError("CI must check the report in a browser: apt-get install chromium")
        pytest.skip("no chromium (apt-get install chromium)")
    report = study / "report" / "report.html"
    if not report.exists():
        assert analysis(study, "--wandb", "off", cwd=study.parent).returncode == 0
    probe = (
        "<script>window.addEventListener('load', () => { const imgs = [...document.images]; document.title = "
        "'loaded ' + imgs.filter(i => i.complete && i.naturalWidth > 0).length + ' of ' + imgs.length; });</script>"
    )
    page = tmp_path / "probe.html"
    page.write_text(report.read_text().replace("</body>", probe + "</body>"))
    done = subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--virtual-time-budget=10000",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    title = re.search(r"<title>(.*?)</title>", done.stdout)
    assert title and title.group(1) == "loaded 5 of 5", done.stdout[:500] + done.stderr[-2000:]
    shot = tmp_path / "report.png"
    subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--window-size=1200,3000",
            f"--screenshot={shot}",
            report.as_uri(),
        ],
        capture_output=True,
        timeout=120,
    )
    assert shot.stat().st_size > 50_000  # a rendered page with figures, not a blank one
