"""W&B offline: a real multirun, read back with wandb's own protobufs and checked against the run record."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from analysis.load import read_metrics, read_result
from tests.conftest import run_ablate
from tests.wandb_records import read_offline_run

pytestmark = pytest.mark.slow


def test_offline_study_matches_the_run_records(tmp_path: Path) -> None:
    sweep = tmp_path / "studies" / "warmup-vs-optimizer"
    done = run_ablate(
        "-m",
        "optimizer=adam,sgd",
        "warmup=0,50",
        "tracker=wandb",
        "tracker.log_every=20",
        "steps=120",
        "eval_every=40",
        "data.n_train=1024",
        "data.n_eval=256",
        f"hydra.sweep.dir={sweep}",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    with open(sweep / "summary.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 4
    for row in rows:
        run_dir = sweep / row["run"]
        result = read_result(run_dir)
        wandb_run = read_offline_run(run_dir)
        optimizer, warmup = row["optimizer"], row["warmup"]
        assert wandb_run["run"] == {
            "id": result["run_id"],
            "name": f"{optimizer}-warmup{warmup}",
            "group": "studies_warmup-vs-optimizer",
            "job_type": "train",
            "project": "ablate",
            "tags": [f"optimizer={optimizer}", f"warmup={warmup}"],
        }
        config = wandb_run["config"]
        assert config["optimizer.name"] == optimizer and config["warmup"] == int(warmup)
        assert config["lr"] == (0.001 if optimizer == "adam" else 0.1)  # resolved, not ${optimizer.default_lr}
        assert not any("${" in str(v) for v in config.values())
        # W&B holds every log_every-th line and every evaluation line, with the record's exact values
        local = {r["step"]: r for r in read_metrics(run_dir)}
        logged = {h["step"]: h for h in wandb_run["history"]}
        assert sorted(logged) == sorted({s for s in local if s % 20 == 0 or "eval/loss" in local[s]} | {119})
        for step, h in logged.items():
            for key, value in local[step].items():
                assert h[key] == pytest.approx(value, rel=1e-12), (step, key)
        assert wandb_run["summary"]["status"] == "completed"
        assert wandb_run["summary"]["final_eval_loss"] == pytest.approx(result["summary"]["final_eval_loss"])
        assert wandb_run["exit_code"] == 0
