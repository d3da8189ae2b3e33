"""W&B offline: a real multirun, read back with wandb's own protobufs and checked against the run record."""

from __future__ import annotations

import csv
import socket
import threading
import time
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
        assert wandb_run["run"]["id"].startswith(result["run_id"] + "-")  # one W&B run per attempt
        assert wandb_run["config"]["run_id"] == wandb_run["summary"]["run_id"] == result["run_id"]
        assert {k: v for k, v in wandb_run["run"].items() if k != "id"} == {
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
    check_analysis_run(sweep, rows)


def check_analysis_run(sweep: Path, rows: list[dict[str, str]]) -> None:
    """The analysis helper logs a figure and a table to one ``job_type=analysis`` run in the study's group."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    from analysis.to_wandb import analysis_run_id, log_analysis

    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    fig.savefig(sweep / "curve.png")
    plt.close(fig)
    table = pd.DataFrame(rows)[["optimizer", "warmup", "final_eval_loss"]]
    out = log_analysis(sweep, sweep / "report", {"convergence": sweep / "curve.png"}, {"runs": table})
    assert out is not None and out.is_relative_to(sweep / "report")
    analysis = read_offline_run(sweep / "report")
    assert analysis["run"]["group"] == "studies_warmup-vs-optimizer"
    assert analysis["run"]["job_type"] == "analysis" and analysis["run"]["project"] == "ablate"
    assert analysis["run"]["id"] == analysis_run_id(sweep)
    (logged,) = analysis["history"]
    assert logged["convergence/_type"] == "image-file" and logged["runs/_type"] == "table-file"
    assert logged["runs/nrows"] == 4 and logged["runs/ncols"] == 3
    assert (out / "files" / logged["convergence/path"]).exists()
    assert analysis["exit_code"] == 0


def silent_server() -> tuple[socket.socket, list[socket.socket]]:
    """A local port that accepts connections and never answers (a hung W&B server)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    accepted: list[socket.socket] = []

    def serve() -> None:
        while True:
            try:
                accepted.append(server.accept()[0])
            except OSError:
                return

    threading.Thread(target=serve, daemon=True).start()
    return server, accepted


def refusing_port() -> int:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nothing listens there now: connections are refused
    return port


@pytest.mark.parametrize("server", ["never-answers", "refuses"])
def test_wandb_failure_costs_nothing_but_a_warning(tmp_path: Path, server: str, monkeypatch) -> None:
    if server == "never-answers":
        listener, _ = silent_server()
        port = listener.getsockname()[1]
    else:
        port = refusing_port()
    monkeypatch.setenv("WANDB_BASE_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    tic = time.monotonic()
    done = run_ablate(
        "tracker=wandb",
        "tracker.mode=online",
        "tracker.init_timeout_s=5",
        "steps=60",
        "eval_every=20",
        "hydra.run.dir=run",
        cwd=tmp_path,
        timeout=120,
    )
    elapsed = time.monotonic() - tic
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("warning: W&B online start failed") == 1
    assert "this run logs to W&B offline instead" in done.stderr and "python -m ablate.sync" in done.stderr
    assert "Traceback" not in done.stderr
    assert elapsed < 60, f"bounded: the W&B start gives up after init_timeout_s (took {elapsed:.0f} s)"
    result = read_result(tmp_path / "run")
    assert result["status"] == "completed"
    assert [r["step"] for r in read_metrics(tmp_path / "run")] == list(range(61))
    wandb_run = read_offline_run(tmp_path / "run")  # kept offline, for ablate.sync
    assert wandb_run["summary"]["status"] == "completed" and wandb_run["exit_code"] == 0
    local = {r["step"]: r for r in read_metrics(tmp_path / "run")}
    logged = [h["step"] for h in wandb_run["history"]]
    assert logged == sorted({s for s in local if s % 50 == 0 or "eval/loss" in local[s]} | {59})


def test_sync_lists_skips_synced_and_reports_failures(tmp_path: Path, monkeypatch) -> None:
    import subprocess
    import sys

    study = tmp_path / "study"
    done = run_ablate("-m", "warmup=0,10,20", "tracker=wandb", "steps=30", f"hydra.sweep.dir={study}", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    (marker_run,) = (study / "warmup=10").glob("wandb/offline-run-*")
    (marker_run / f"run-{read_result(study / 'warmup=10')['run_id']}.wandb.synced").write_text("")

    def sync(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "ablate.sync", *args], capture_output=True, text=True, timeout=120)

    dry = sync(str(study), "--dry-run")
    assert dry.returncode == 0
    assert "3 offline W&B run(s)" in dry.stdout and "1 already synced, 2 to upload" in dry.stdout
    assert dry.stdout.count("would upload") == 2 and "/warmup=10/wandb" not in dry.stdout
    # a server that refuses: each upload fails within its time limit, reported, exit status 1
    monkeypatch.setenv("WANDB_BASE_URL", f"http://127.0.0.1:{refusing_port()}")
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    failed = sync(str(study), "--timeout", "8")
    assert failed.returncode == 1
    assert failed.stdout.count("failed: ") == 2 and "0 synced, 2 failed" in failed.stdout
    missing = sync(str(tmp_path / "nope"))
    assert missing.returncode == 2 and "is not a directory" in missing.stderr
