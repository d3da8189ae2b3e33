"""analysis.load: a study of real runs, and hand-made run records for the cases real runs rarely produce."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from analysis import stats
from analysis.load import STANDARD_FACTORS, StudyError, load_study, read_metrics
from tests.conftest import REPO, run_ablate

# ---------------------------------------------------------------------------------------------------- real runs


@pytest.fixture(scope="module")
def real_study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """warmup=0,20 x seed=0,1: four real runs of 40 steps, evaluated every 10."""
    tmp = tmp_path_factory.mktemp("real")
    sweep_dir = tmp / "study"
    done = run_ablate(
        "-m",
        "warmup=0,20",
        "seed=0,1",
        "steps=40",
        "eval_every=10",
        "data.n_train=512",
        "data.n_eval=256",
        "tracker=local",
        "tracker.progress=off",
        f"hydra.sweep.dir={sweep_dir}",
        cwd=tmp,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return sweep_dir


@pytest.mark.slow
def test_real_study_runs_table(real_study: Path) -> None:
    study = load_study(real_study)
    runs = study.runs
    assert len(runs) == 4 and study.incomplete == []
    assert study.factors == ["warmup", "seed"] and study.cell_factors == ["warmup"]
    assert runs["run"].is_unique and set(runs["study"]) == {"study"}
    assert list(zip(runs["warmup"], runs["seed"], strict=True)) == [(0, 0), (0, 1), (20, 0), (20, 1)]
    assert set(STANDARD_FACTORS) <= set(runs.columns)
    assert runs[["optimizer", "schedule", "skew", "model", "data"]].iloc[0].tolist() == [
        "adam",
        "constant",
        "none",
        "mlp",
        "clusters",
    ]
    assert (runs["status"] == "completed").all() and runs["run_id"].str.fullmatch("[0-9a-f]{16}").all()
    assert runs["warmup"].dtype == np.int64 and runs["lr"].dtype == np.float64
    assert runs["final_eval_loss"].dtype == np.float64 and runs["ended_at"].dt.tz is not None
    assert runs["git_commit"].notna().all() and (runs["steps"] == 40).all()


@pytest.mark.slow
def test_real_study_history_table(real_study: Path) -> None:
    study = load_study(real_study)
    history = study.history
    assert list(history.columns[:3]) == ["study", "run", "step"]
    assert history["run"].dtype == "category" and history["step"].dtype == np.int64
    assert all(history[name].dtype == np.float32 for name in history.columns[3:])
    assert {"train/loss", "opt/lr", "eval/loss", "eval/acc", "eval/early/loss", "eval/rest/acc"} <= set(history)
    assert history.groupby("run", observed=True).size().tolist() == [41] * 4  # steps 0..40, the final eval at 40
    evaluated = history.dropna(subset=["eval/loss"])
    assert sorted(set(evaluated["step"])) == [0, 10, 20, 30, 40]
    final = evaluated[evaluated["step"] == 40].set_index("run")["eval/loss"]
    expected = study.runs.set_index("run")["final_eval_loss"]
    assert final.to_numpy() == pytest.approx(expected.loc[final.index].to_numpy(), rel=1e-6)


@pytest.mark.slow
def test_real_study_statistics(real_study: Path) -> None:
    study = load_study(real_study)
    table = stats.aggregate(study.runs, "final_eval_loss", study.cell_factors)
    assert list(table["warmup"]) == [0, 20] and list(table["n"]) == [2, 2] and table["ci_available"].all()
    effects = stats.paired_effects(study.runs, "final_eval_loss", study.cell_factors)
    assert effects["n_pairs"].tolist() == [2]
    target = stats.default_target(study.runs, study.history, "eval/loss", study.cell_factors)
    times = stats.time_to_target(study.runs, study.history, "eval/loss", target, study.cell_factors)
    assert len(times) == 4 and times["step"].between(0, 40).all()


# ---------------------------------------------------------------------------------------------------- hand-made records


def config_for(warmup: Any = 0, seed: int = 0, optimizer: str = "adam", steps: int = 40, **top: Any) -> dict:
    return {
        "model": {"name": "mlp", "hidden_sizes": [16, 16]},
        "data": {"name": "clusters", "n_train": 512},
        "optimizer": {"name": optimizer, "beta2": 0.999} if optimizer != "sgd" else {"name": "sgd"},
        "schedule": {"name": "constant"},
        "skew": {"name": "none", "steps": 200},
        "warmup": warmup,
        "warmup_shape": "linear",
        "lr": 0.001,
        "steps": steps,
        "batch_size": 64,
        "seed": seed,
        **top,
    }


def metric_lines(steps: int = 40, eval_every: int = 10, diverge_at: int | None = None) -> list[str]:
    lines = []
    for step in range(steps + 1 if diverge_at is None else diverge_at + 1):
        row: dict[str, Any] = {"step": step, "train/loss": 2.0 - step / 40, "opt/lr": 0.001}
        if step == diverge_at:
            row["train/loss"] = None
        elif step % eval_every == 0:
            row.update({"eval/loss": 2.0 - step / 40, "eval/acc": step / 80})
        lines.append(json.dumps(row))
    return lines


def write_run(
    study_dir: Path,
    name: str,
    *,
    config: dict | None = None,
    status: str = "completed",
    run_id: str | None = None,
    lines: list[str] | None = None,
    factors: tuple[str, ...] = ("warmup", "seed"),
    with_result: bool = True,
    **result: Any,
) -> Path:
    """A run record as ablate writes it; ``with_result=False`` leaves ``result.json`` out (a run that never ended)."""
    run_dir = study_dir / name
    run_dir.mkdir(parents=True)
    config = config_for() if config is None else config
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config))
    (run_dir / "metrics.jsonl").write_text("\n".join(metric_lines() if lines is None else lines) + "\n")
    if not with_result:
        return run_dir
    record = {
        "run_id": run_id or hashlib.sha256(f"{study_dir}/{name}".encode()).hexdigest()[:16],
        "label": name,
        "overrides": [],
        "study": {"multirun_id": "m1", "factors": list(factors)},
        "warmup_steps": config["warmup"] if config["warmup"] != "auto" else 2000,
        "status": status,
        "summary": {"final_eval_loss": 1.0, "steps_completed": config["steps"]},
        "provenance": {"git_commit": "abc", "host": "h", "device": "cpu"},
        "started_at": "2026-11-26T10:00:00+00:00",
        "ended_at": "2026-11-26T10:00:05+00:00",
        "wall_time_s": 5.0,
        **result,
    }
    (run_dir / "result.json").write_text(json.dumps(record))
    return run_dir


def write_stamp(study_dir: Path, *factors: str) -> None:
    study_dir.mkdir(parents=True, exist_ok=True)
    (study_dir / "study.json").write_text(json.dumps({"multirun_id": "m1", "factors": list(factors)}))


def test_diverged_and_failed_runs(tmp_path: Path) -> None:
    write_run(tmp_path, "0")
    summary = {"final_eval_loss": None, "diverged_step": 15, "divergence_reason": "non-finite train loss"}
    write_run(tmp_path, "1", status="diverged", lines=metric_lines(diverge_at=15), summary=summary)
    write_run(tmp_path, "2", status="failed", lines=metric_lines()[:5], error="RuntimeError: boom", summary=None)
    study = load_study(tmp_path)
    runs = study.runs.set_index("run")
    assert runs["status"].tolist() == ["completed", "diverged", "failed"]
    assert runs.loc["2", "error"] == "RuntimeError: boom" and pd.isna(runs.loc["0", "error"])
    assert runs.loc["1", "diverged_step"] == 15 and np.isnan(runs.loc["1", "final_eval_loss"])
    assert runs.loc["1", "divergence_reason"] == "non-finite train loss"
    sizes = study.history.groupby("run", observed=True).size()
    assert sizes.to_dict() == {"0": 41, "1": 16, "2": 5}
    assert np.isnan(study.history.loc[study.history["run"] == "1", "train/loss"].iloc[-1])
    rate = stats.divergence_rate(study.runs, [])
    assert (rate["n_runs"].iloc[0], rate["n_diverged"].iloc[0]) == (2, 1)  # the failed run is not a trial


def test_missing_result_is_incomplete_and_left_out(tmp_path: Path) -> None:
    write_run(tmp_path, "0")
    killed = write_run(tmp_path, "1", with_result=False)
    with pytest.warns(UserWarning, match="1 run directories without result.json left out"):
        study = load_study(tmp_path)
    assert study.incomplete == [killed.resolve()]
    assert study.runs["run"].tolist() == ["0"] and set(study.history["run"]) == {"0"}


def test_corrupt_and_partial_lines_are_skipped_with_a_warning(tmp_path: Path) -> None:
    lines = metric_lines()
    lines[2] = '{"step": 2, "train/lo'  # corrupt
    lines.append('{"step": 41, "eval/lo')  # the partial last line of a killed run
    write_run(tmp_path, "0", lines=lines)
    with pytest.warns(UserWarning) as caught:
        study = load_study(tmp_path)
    messages = [str(w.message) for w in caught]
    path = tmp_path.resolve() / "0" / "metrics.jsonl"
    assert f"{path}:3: skipped a line that is not complete JSON" in messages
    assert f"{path}:42: skipped a line that is not complete JSON" in messages
    assert study.history["step"].tolist() == [s for s in range(41) if s != 2]
    with pytest.warns(UserWarning, match=r"metrics.jsonl:(3|42):") as caught:
        assert len(read_metrics(tmp_path / "0")) == 40
    assert len(caught) == 2


def test_halves_of_a_broken_line_do_not_join_into_one_row(tmp_path: Path) -> None:
    lines = metric_lines()
    lines[3:4] = ['{"step": 3, "train/loss": 1.9', '"opt/lr": 0.001}']  # valid JSON only when joined by a comma
    write_run(tmp_path, "0", lines=lines)
    with pytest.warns(UserWarning, match="not complete JSON"):
        study = load_study(tmp_path)
    assert 3 not in study.history["step"].tolist() and len(study.history) == 40


def test_not_a_study_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(StudyError, match="no such directory"):
        load_study(tmp_path / "nowhere")
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(StudyError, match="it is a file"):
        load_study(tmp_path / "file.txt")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(
        StudyError,
        match=r"is not a study: no run records \(result.json files written by python -m ablate\) under it; .*empty",
    ):
        load_study(empty)
    with pytest.raises(StudyError, match=r"found only empty/, file.txt"):
        load_study(tmp_path)
    write_run(tmp_path / "started", "0", with_result=False)
    with pytest.raises(StudyError, match=r"found 1 run directories without result.json \(0\)"):
        load_study(tmp_path / "started")
    with pytest.raises(StudyError, match="no study given"):
        load_study([])
    assert issubclass(StudyError, ValueError)


def test_one_seed_study_has_no_intervals(tmp_path: Path) -> None:
    write_stamp(tmp_path, "warmup")
    write_run(tmp_path, "0", config=config_for(warmup=0), summary={"final_eval_loss": 0.9})
    write_run(tmp_path, "1", config=config_for(warmup=20), summary={"final_eval_loss": 0.8})
    study = load_study(tmp_path)
    assert study.factors == ["warmup"]
    table = stats.aggregate(study.runs, "final_eval_loss", study.cell_factors)
    assert table["mean"].tolist() == [0.9, 0.8]
    assert table["mean_low"].isna().all() and table["iqm_high"].isna().all() and not table["ci_available"].any()
    effect = stats.paired_effects(study.runs, "final_eval_loss", study.cell_factors).iloc[0]
    assert effect["n_pairs"] == 1 and effect["mean_diff"] == pytest.approx(-0.1) and np.isnan(effect["mean_diff_low"])


def test_studies_with_different_factors_mix(tmp_path: Path) -> None:
    first, second = tmp_path / "warmups", tmp_path / "betas"
    write_stamp(first, "warmup", "seed")
    write_stamp(second, "+optimizer.beta2")
    for warmup in (0, 20):
        write_run(first, str(warmup), config=config_for(warmup=warmup))
    for beta2 in (0.99, 0.999):
        config = config_for(warmup=20)
        config["optimizer"]["beta2"] = beta2
        write_run(second, str(beta2), config=config, factors=("optimizer.beta2",))
    write_run(second, "sgd", config=config_for(optimizer="sgd"), factors=("optimizer",))
    study = load_study([first, second])
    runs = study.runs
    assert runs["study"].tolist() == ["warmups", "warmups", "betas", "betas", "betas"]
    # every run's beta2 comes from its own config (the warmup study did not sweep it); sgd has none
    assert runs["optimizer.beta2"].tolist()[:4] == [0.999, 0.999, 0.99, 0.999] and np.isnan(runs["optimizer.beta2"][4])
    assert study.factors == ["optimizer", "warmup", "optimizer.beta2"]
    assert list(study.history["study"].cat.categories) == ["warmups", "betas"]
    assert study.history.groupby(["study", "run"], observed=True).size().tolist() == [41] * 5


def test_factor_values_come_from_the_config_not_the_overrides(tmp_path: Path) -> None:
    write_stamp(tmp_path, "warmup", "optimizer")
    # an earlier multirun's record: it did not sweep warmup, so no override says warmup=100
    write_run(tmp_path, "0", config=config_for(warmup=100, optimizer="adamw"), overrides=["seed=0"])
    write_run(tmp_path, "1", config=config_for(warmup="auto"), overrides=["warmup=auto"], warmup_steps=2000)
    runs = load_study(tmp_path).runs
    assert runs["warmup"].tolist() == [100, 2000] and runs["warmup_steps"].tolist() == [100, 2000]
    assert runs["optimizer"].tolist() == ["adamw", "adam"]


def test_duplicate_run_id_keeps_the_best_record(tmp_path: Path) -> None:
    write_run(tmp_path, "0", run_id="aaaaaaaaaaaaaaaa", status="failed", error="OSError: x")
    write_run(tmp_path, "1", run_id="aaaaaaaaaaaaaaaa", status="completed")
    write_run(tmp_path, "2", run_id="bbbbbbbbbbbbbbbb", ended_at="2026-11-26T10:00:05+00:00")
    write_run(tmp_path, "3", run_id="bbbbbbbbbbbbbbbb", ended_at="2026-11-27T09:00:00+00:00")
    with pytest.warns(UserWarning, match="share run_id") as caught:
        study = load_study(tmp_path)
    assert len(caught) == 2 and "kept run 1 (completed" in str(caught[0].message)
    assert study.runs["run"].tolist() == ["1", "3"]
    assert set(study.history["run"]) == {"1", "3"}


def test_ignored_directories_and_nested_run_names(tmp_path: Path) -> None:
    write_run(tmp_path, "grid/optimizer=adam,warmup=100", config=config_for(warmup=100))
    write_run(tmp_path, "2")
    write_run(tmp_path, "10")
    write_run(tmp_path, "grid/optimizer=adam,warmup=20", config=config_for(warmup=20))
    for ignored in ("superseded/0", "report/x", "wandb/run-1", "2/.hydra/y"):
        write_run(tmp_path, ignored)
    runs = load_study(tmp_path).runs
    assert runs["run"].tolist() == ["2", "10", "grid/optimizer=adam,warmup=20", "grid/optimizer=adam,warmup=100"]


def test_yaml_is_read_safely(tmp_path: Path) -> None:
    run_dir = write_run(tmp_path, "0")
    marker = tmp_path / "executed"
    (run_dir / "config.yaml").write_text(f"warmup: !!python/object/apply:os.system ['touch {marker}']\n")
    with pytest.warns(UserWarning, match="config.yaml: unreadable"):
        runs = load_study(tmp_path).runs
    assert not marker.exists()
    assert runs["status"].tolist() == ["completed"] and runs["warmup"].isna().all()


def test_same_name_studies_are_told_apart_and_repeats_read_once(tmp_path: Path) -> None:
    write_run(tmp_path / "a" / "study", "0")
    write_run(tmp_path / "b" / "study", "0")
    study = load_study([tmp_path / "a" / "study", tmp_path / "b" / "study", tmp_path / "b" / "study"])
    assert study.runs["study"].tolist() == [str((tmp_path / d / "study").resolve()) for d in ("a", "b")]
    assert len(study.history) == 82


def test_reading_imports_neither_torch_nor_ablate() -> None:
    code = "import sys, analysis.load, analysis.stats; print(sorted({'torch', 'ablate'} & set(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_no_warning_for_a_clean_study(tmp_path: Path) -> None:
    write_run(tmp_path, "0")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_study(str(tmp_path))
