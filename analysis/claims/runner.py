"""Running the named studies for ``python -m analysis.claims``: ``lr-tuning`` first, then ``python -m analysis.tune
--write`` (the "well-tuned" rates the other studies read, ``conf/generated/tuned_lr/``), then every claim's study,
each as its own ``python -m ablate -m +sweep=<name>`` subprocess (resuming), timed into the generated
``docs/generated/wall_times.yaml``."""

from __future__ import annotations

import subprocess
import sys
import time

from analysis.claims import wall_times
from analysis.claims.catalog import CLAIMS, REPO


def run_study(name: str) -> float | None:
    """``python -m ablate -m +sweep=<name>`` (resuming); its wall time in seconds, None if nothing had to run."""
    tic = time.perf_counter()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "ablate",
            "-m",
            f"+sweep={name}",
            "hydra/launcher=stacked",
            "tracker=local",
            "tracker.progress=off",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - tic
    tail = done.stderr.strip().splitlines()[-3:]
    print(f"{name}: {seconds / 60:.1f} min; " + " | ".join(tail), flush=True)
    if done.returncode not in (0, 1):  # 1: some run failed, recorded; anything else: the study did not run
        raise SystemExit(f"study {name} did not run: {done.stderr[-2000:]}")
    return None if "; 0 to run" in done.stderr else seconds  # a resumed, finished study measures nothing


def run_all() -> dict[str, float]:
    """Run (resume) every study, tuning in between; record and return the wall times of those that ran."""
    ran = {"lr-tuning": run_study("lr-tuning")}
    subprocess.run(
        [sys.executable, "-m", "analysis.tune", "outputs/studies/lr-tuning", "--write"], cwd=REPO, check=True
    )
    for claim in CLAIMS:
        for name in claim.studies:
            ran[name] = run_study(name)
    times = {name: seconds for name, seconds in ran.items() if seconds is not None}
    if times:
        wall_times.record(times)
    return times
