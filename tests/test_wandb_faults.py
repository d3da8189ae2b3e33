"""W&B under faults, with the real wandb (offline) read back from what it wrote.

A run killed and re-run: each attempt is its own W&B run. W&B unreachable in a study: the first run falls back
to offline with one warning and marks the study, the later runs start offline at once, and every run's data
stays on disk for ``python -m ablate.sync``.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest

import ablate.record.runner
import ablate.sync
from ablate.config import Config, run_id
from ablate.record.runner import execute
from ablate.record.wandb import naming
from ablate.record.wandb.naming import attempt_id, run_in_study, study_group
from ablate.record.wandb.offline import OFFLINE_MARKER, mark_study_offline, offline_marker, study_offline
from analysis.load import read_metrics, read_result
from tests.conftest import make_config
from tests.wandb_records import expected_history, read_offline_runs

pytestmark = pytest.mark.slow

SMALL = ("steps=20", "eval_every=10", "tracker.progress=off", "data.n_train=256", "data.n_eval=128")
FALLBACK = "warning: W&B online start failed"


@pytest.fixture(autouse=True)
def offline_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tracker sets WANDB_MODE in os.environ; put it back after each test."""
    for key, value in (("WANDB_MODE", "offline"), ("WANDB_SILENT", "true"), ("WANDB_ERROR_REPORTING", "false")):
        monkeypatch.setenv(key, value)


def wandb_config(*overrides: str, log_every: int = 1) -> Config:
    return make_config("tracker=wandb", f"tracker.log_every={log_every}", *SMALL, *overrides)


def written(run_dir: Path) -> list[dict[str, Any]]:
    """``run_dir``'s offline W&B runs once wandb has written them: in one process, ``run.finish()`` can return
    before wandb's service has written the run's records (a run after the first: ~50 ms later); ``teardown``
    waits for them, as the end of a ``python -m ablate`` process does."""
    import wandb

    wandb.teardown()
    return read_offline_runs(run_dir)


def steps_of(history: list[dict[str, Any]]) -> list[int]:
    return [int(row["step"]) for row in history]


def test_attempt_ids_are_distinct_and_carry_the_run_id() -> None:
    ids = {attempt_id("0123456789abcdef", "2026-11-30T13:19:22+00:00") for _ in range(50)}
    assert len(ids) == 50  # the same second: still one id each
    for wandb_id in ids:
        assert wandb_id.startswith("0123456789abcdef-261130-131922-") and len(wandb_id) == 35
        assert set(wandb_id) <= set("0123456789abcdef-")


def test_group_run_and_config_carry_no_local_paths_or_plumbing(tmp_path: Path) -> None:
    unnamed = {"sweep_dir": "/home/me/outputs/studies/2026-11-30/13-05-07", "factors": ["warmup", "optimizer"]}
    assert study_group(unnamed) == "warmup-optimizer 2026-11-30 13:05:07"
    assert study_group({**unnamed, "factors": []}) == "study 2026-11-30 13:05:07"
    assert (
        study_group({"sweep_dir": "/home/me/outputs/studies/warmup-skew", "factors": ["skew"]}) == "studies_warmup-skew"
    )
    assert study_group({"sweep_dir": "/x/outputs/studies/sweeps/lr-tuning"}) == "sweeps_lr-tuning"
    assert study_group({}) == "runs"
    sweep = tmp_path / "2026-11-30" / "13-05-07"
    assert run_in_study(sweep / "optimizer=adam,warmup=100", {"sweep_dir": str(sweep)}) == "optimizer=adam,warmup=100"
    assert run_in_study(sweep / "3", {"sweep_dir": str(sweep)}) == "3"
    assert run_in_study(tmp_path / "runs" / "2026-11-30" / "13-05-07", {}) == "2026-11-30/13-05-07"
    assert run_in_study(tmp_path / "my-run", {}) == "my-run"
    config = naming.wandb_config(make_config("tracker=wandb", "fail_at_step=5", "skew=cluster"))
    assert config["skew.name"] == "cluster" and config["optimizer.name"] == "adam" and "seed" in config
    assert not [k for k in config if k.startswith("tracker.") or k in ("fail_at_step", "smoke", "study")]
    named = naming.wandb_config(make_config("tracker=wandb", "study=warmup-skew", "smoke=true"))
    assert named["study"] == "warmup-skew" and named["smoke"] is True  # a smoke run says so


def test_a_rerun_is_a_second_wandb_run_not_a_mixed_history(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = wandb_config(log_every=3)  # windows of 3 updates; evaluations at 0, 10, 20 (between windows)
    study = {"sweep_dir": str(tmp_path), "multirun_id": "m1", "factors": ["warmup"]}
    run_dir = tmp_path / "warmup=0"
    real_train = ablate.record.runner.train

    def crash_at_step_8(config: Config, device: Any, log: Any) -> Any:  # the first attempt dies mid-run
        def log_then_crash(step: int, metrics: dict[str, float]) -> None:
            if step == 8:
                raise RuntimeError("node lost at step 8")
            log(step, metrics)

        return real_train(config, device, log_then_crash)

    monkeypatch.setattr(ablate.record.runner, "train", crash_at_step_8)
    assert execute(config, run_dir, "#0", ["warmup=0"], study) == "failed"
    monkeypatch.setattr(ablate.record.runner, "train", real_train)
    assert execute(config, run_dir, "#0", ["warmup=0"], study) == "completed"

    rid = run_id(config)
    assert read_result(run_dir)["status"] == "completed"
    (superseded,) = (run_dir / "superseded").iterdir()
    assert json.loads((superseded / "result.json").read_text())["status"] == "failed"
    attempts = written(run_dir)
    assert len(attempts) == 2 and len(list(run_dir.glob("wandb/offline-run-*"))) == 2
    failed, completed = sorted(attempts, key=lambda a: a["summary"]["status"] != "failed")
    assert failed["run"]["id"] != completed["run"]["id"]
    for attempt in attempts:
        assert attempt["run"]["id"].startswith(f"{rid}-")
        assert attempt["config"]["run_id"] == rid and attempt["summary"]["run_id"] == rid  # one config, grouped
        assert attempt["run"]["name"] == "warmup0"
        assert attempt["run"]["group"] == f"{tmp_path.parent.name}_{tmp_path.name}"
    # each history holds its own attempt's steps, and only those: the failed one's last window (6, 7) is
    # shorter, sent when the run ended; the completed one's windows end at 0, 3, ..., 18 and the last update
    assert steps_of(failed["history"]) == [0, 3, 6, 7]
    assert failed["summary"]["status"] == "failed" and failed["exit_code"] == 1
    assert steps_of(completed["history"]) == [0, 3, 6, 9, 10, 12, 15, 18, 19, 20]
    assert completed["summary"]["status"] == "completed" and completed["exit_code"] == 0
    superseded_lines = [json.loads(x) for x in (superseded / "metrics.jsonl").read_text().splitlines()]
    for attempt, lines in ((failed, superseded_lines), (completed, read_metrics(run_dir))):
        expected = expected_history(lines, log_every=3, steps=20)
        assert steps_of(expected) == steps_of(attempt["history"])
        for row, want in zip(attempt["history"], expected, strict=True):  # window means of the record's values
            assert {k for k in row if not k.startswith("_")} == set(want), row["step"]
            for key, value in want.items():
                assert row[key] == pytest.approx(value, rel=1e-12), (row["step"], key)
    eval_10 = completed["history"][4]
    assert "train/loss" not in eval_10 and "eval/loss" in eval_10  # an evaluation between windows: a point of its own

    # ablate.sync uploads both attempts, as two runs (no shared id)
    capsys.readouterr()
    assert ablate.sync.main([str(tmp_path), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "2 offline W&B run(s)" in out and "0 already synced, 2 to upload" in out
    assert out.count("would upload") == 2 and "share" not in out


def test_sync_uploads_folders_of_one_id_in_order_never_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Folders sharing a W&B id (the analysis run, or attempts recorded before ids were per attempt)."""
    wandb_dir = tmp_path / "warmup=0" / "wandb"
    names = [
        "offline-run-20260101_120000-aaaa",
        "offline-run-20250101_120000-aaaa",
        "offline-run-20250101_120000-bbbb",
        "offline-run-20240101_120000-cccc",
    ]
    for name in names:
        (wandb_dir / name).mkdir(parents=True)
        (wandb_dir / name / f"run-{name.rsplit('-', 1)[1]}.wandb").write_bytes(b":W&B")
    calls: list[str] = []

    def fake_sync(run: Path, timeout_s: float) -> tuple[Path, str | None]:
        calls.append(run.name)
        return run, None

    monkeypatch.setattr(ablate.sync, "sync_one", fake_sync)
    assert ablate.sync.main([str(tmp_path), "--jobs", "1"]) == 0
    out = capsys.readouterr().out
    assert "note: 2 offline runs share 1 W&B id(s) (e.g. aaaa)" in out and "4 synced, 0 failed" in out
    assert sorted(calls) == sorted(names)
    assert calls.index("offline-run-20250101_120000-aaaa") == calls.index("offline-run-20260101_120000-aaaa") - 1


def closed_port() -> int:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nothing listens there: connections are refused
    return port


def wandb_folders(run_dir: Path) -> tuple[list[Path], list[Path]]:
    """(online, offline) W&B run folders wandb made in ``run_dir``: an online one means it tried the network."""
    return sorted(run_dir.glob("wandb/run-*")), sorted(run_dir.glob("wandb/offline-run-*"))


def test_unreachable_wandb_falls_back_offline_once_per_study(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("WANDB_BASE_URL", f"http://127.0.0.1:{closed_port()}")
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    sweep = tmp_path / "study"
    study = {"sweep_dir": str(sweep), "multirun_id": "first-command", "factors": ["warmup"]}
    online = ("tracker.mode=online", "tracker.init_timeout_s=3")

    def run(warmup: int, study: dict[str, Any]) -> Path:
        run_dir = sweep / f"warmup={warmup}"
        config = wandb_config(*online, f"warmup={warmup}")
        assert execute(config, run_dir, f"#{warmup}", [f"warmup={warmup}"], study) == "completed"
        return run_dir

    first = run(0, study)
    second = run(10, study)
    err = capfd.readouterr().err
    assert err.count(FALLBACK) == 1, err  # one line for the study, none for its later runs
    assert "this run logs to W&B offline instead" in err and f"python -m ablate.sync {sweep}" in err
    assert "Traceback" not in err and "continuing with the local run record only" not in err
    marker = json.loads((sweep / OFFLINE_MARKER).read_text())["commands"]
    assert list(marker) == ["first-command"] and "127.0.0.1" in marker["first-command"]["reason"]
    tried, _ = wandb_folders(first)
    assert len(tried) == 1  # the first run asked W&B online, and failed
    assert wandb_folders(second)[0] == []  # the second never went online
    for run_dir in (first, second):
        (attempt,) = written(run_dir)  # both runs' W&B data are on disk, whole, for ablate.sync
        assert steps_of(attempt["history"]) == list(range(21))
        assert attempt["summary"]["status"] == "completed" and attempt["exit_code"] == 0
        assert attempt["config"]["run_id"] == read_result(run_dir)["run_id"]
    assert {p.name for p in ablate.sync.offline_runs(sweep)} == {
        p.name for r in (first, second) for p in wandb_folders(r)[1]
    }

    # a new command on the same study tries online again (and marks the study again)
    third = run(5, {**study, "multirun_id": "second-command"})
    err = capfd.readouterr().err
    assert err.count(FALLBACK) == 1, err
    assert list(json.loads((sweep / OFFLINE_MARKER).read_text())["commands"]) == ["first-command", "second-command"]
    assert len(wandb_folders(third)[0]) == 1 and len(wandb_folders(third)[1]) == 1


def test_single_run_falls_back_offline_without_a_marker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("WANDB_BASE_URL", f"http://127.0.0.1:{closed_port()}")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)  # no API key: init fails at once, the same fallback
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "wandb-config"))  # no stored login either
    config = wandb_config("tracker.mode=online", "tracker.init_timeout_s=3")
    run_dir = tmp_path / "run"
    assert execute(config, run_dir, "run", [], {}) == "completed"
    err = capfd.readouterr().err
    assert err.count(FALLBACK) == 1 and f"python -m ablate.sync {run_dir}" in err, err
    assert "rest of this study" not in err
    (attempt,) = written(run_dir)
    assert steps_of(attempt["history"]) == list(range(21)) and attempt["run"]["group"] == "runs"
    assert not list(tmp_path.rglob(OFFLINE_MARKER))


def test_a_study_marked_by_another_process_starts_offline_with_one_note(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """Another launcher worker found W&B unreachable: this one goes offline at once, and says so in one line."""
    monkeypatch.setenv("WANDB_BASE_URL", f"http://127.0.0.1:{closed_port()}")
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    sweep = tmp_path / "study"
    study = {"sweep_dir": str(sweep), "multirun_id": "worker-command", "factors": ["warmup"]}
    mark_study_offline(study, "connection refused")
    assert study_offline(study) is not None
    assert study_offline({**study, "multirun_id": "later-command"}) is None  # a new command tries online again
    assert offline_marker({"sweep_dir": str(sweep)}) is None  # no multirun_id: commands cannot be told apart
    config = wandb_config("tracker.mode=online", "tracker.init_timeout_s=3")
    run_dir = sweep / "warmup=0"
    assert execute(config, run_dir, "#0", ["warmup=0"], study) == "completed"
    err = capfd.readouterr().err
    assert err.count("note: W&B unreachable since") == 1 and FALLBACK not in err, err
    online, offline = wandb_folders(run_dir)
    assert online == [] and len(offline) == 1
    (attempt,) = written(run_dir)
    assert steps_of(attempt["history"]) == list(range(21))
    (sweep / OFFLINE_MARKER).write_text("{not json")  # a torn or foreign marker: as if none (try online)
    assert study_offline(study) is None
