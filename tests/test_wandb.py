"""W&B offline: a real multirun, read back with wandb's own protobufs and checked against the run record."""

from __future__ import annotations

import csv
import json
import socket
import threading
import time
from pathlib import Path

import pytest
import yaml

from analysis.load import read_metrics, read_result
from tests.conftest import REPO, run_ablate
from tests.wandb_records import expected_history, read_offline_run

pytestmark = pytest.mark.slow


def test_offline_study_matches_the_run_records(tmp_path: Path) -> None:
    """The dashboard of an unnamed study, read back from the offline files: group, names, tags, a flat config
    without plumbing, window means of the train metrics, best-value summaries, no local paths."""
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
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    (sweep,) = (tmp_path / "outputs" / "studies").glob("*/*")  # unnamed: outputs/studies/<date>/<time>
    group = f"optimizer-warmup {sweep.parent.name} {sweep.name.replace('-', ':')}"  # factors, then the start
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
            "group": group,
            "job_type": "train",
            "project": "ablate",
            "tags": [f"optimizer={optimizer}", f"warmup={warmup}"],
        }
        # the config: what the run computes, flat and resolved, without ablate's plumbing
        config = wandb_run["config"]
        assert config["optimizer.name"] == optimizer and config["warmup"] == int(warmup)
        assert config["lr"] == (0.001 if optimizer == "adam" else 0.1)  # resolved, not ${optimizer.default_lr}
        assert not any("${" in str(v) for v in config.values())
        assert {"seed", "steps", "data.name", "model.name", "cpu_threads", "provenance.git_commit"} <= set(config)
        assert not [k for k in config if k.startswith("tracker.") or k in ("smoke", "fail_at_step", "study")]
        # history: a point per window of 20 updates (and at the last update) with the window's means, and the
        # evaluations; the local record keeps every step's own values
        lines = read_metrics(run_dir)
        assert [line["step"] for line in lines] == list(range(121)) and all("train/loss" in x for x in lines[:120])
        expected = expected_history(lines, log_every=20, steps=120)
        assert [h["step"] for h in wandb_run["history"]] == [0, 20, 40, 60, 80, 100, 119, 120]
        assert [h["step"] for h in expected] == [0, 20, 40, 60, 80, 100, 119, 120]
        for h, want in zip(wandb_run["history"], expected, strict=True):
            assert {k for k in h if not k.startswith("_")} == set(want), h["step"]
            for key, value in want.items():
                assert h[key] == pytest.approx(value, rel=1e-12), (h["step"], key)
        local = {line["step"]: line for line in lines}
        h40 = next(h for h in wandb_run["history"] if h["step"] == 40)
        window = [local[s]["train/loss"] for s in range(21, 41)]
        assert h40["train/loss"] == pytest.approx(sum(window) / 20, rel=1e-12)  # not the batch of step 40
        assert h40["opt/lr"] == local[40]["opt/lr"] and h40["eval/loss"] == local[40]["eval/loss"]
        # define_metric: losses summarised by their minimum, accuracies by their maximum, both with the last value
        metrics, summary = wandb_run["metrics"], wandb_run["summary"]
        for name in ("train/loss", "eval/loss", "eval/early/loss", "eval/rest/loss", "eval/cue_flipped/loss"):
            assert metrics[name] == {"step_metric": "step", "summary": ["last", "min"]}, name
        for name in ("train/acc", "eval/acc", "eval/early/acc", "eval/rest/acc", "eval/cue_flipped/acc"):
            assert metrics[name] == {"step_metric": "step", "summary": ["last", "max"]}, name
        eval_losses = [x["eval/loss"] for x in lines if "eval/loss" in x]
        assert summary["eval/loss"] == {"min": min(eval_losses), "last": eval_losses[-1]}
        assert summary["eval/loss"]["min"] == pytest.approx(result["summary"]["best_eval_loss"])
        assert summary["eval/acc"]["max"] == pytest.approx(result["summary"]["best_eval_acc"])
        # the summary: the run's directory relative to its study, and no local path anywhere
        assert summary["run"] == row["run"] and "run_dir" not in summary
        assert not [k for k, v in summary.items() if str(tmp_path) in json.dumps(v) or str(v).startswith("/")]
        assert summary["status"] == "completed"
        assert summary["final_eval_loss"] == pytest.approx(result["summary"]["final_eval_loss"])
        assert wandb_run["exit_code"] == 0
    check_analysis_run(sweep, rows, group)


def check_analysis_run(sweep: Path, rows: list[dict[str, str]], group: str) -> None:
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
    import wandb

    wandb.teardown()  # in-process, run.finish() can return before wandb's service has written the run's records
    analysis = read_offline_run(sweep / "report")
    assert analysis["run"]["group"] == group  # beside the study's training runs
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
    every = int(yaml.safe_load((REPO / "conf" / "tracker" / "wandb.yaml").read_text())["log_every"])  # default
    assert logged == sorted({s for s in local if s % every == 0 or "eval/loss" in local[s]} | {59})


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
