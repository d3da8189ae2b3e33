"""Bring your own workload: models, data, optimizers and schedules by import path (tests/user_parts.py plays the
user's package), each mistake a one-line error before any run, and the example project end to end."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from ablate.checks import ConfigError
from ablate.config import run_id
from ablate.run.preflight import preflight
from ablate.run.train import train
from tests.conftest import REPO, make_config
from tests.wandb_records import read_offline_run

CPU = torch.device("cpu")
SKIP = ("outputs", "data")  # of the example project: what a user's runs leave there
SMALL = ("steps=30", "eval_every=10", "tracker=local", "tracker.progress=off")
CLUSTERS = ("data.n_train=256", "data.n_eval=128")


def checked(*overrides: str):  # noqa: ANN201 (a Config)
    """Compose, validate and preflight a config as the command line does before any run."""
    config = make_config(*overrides)
    preflight(config)
    return config


def one_line_error(*overrides: str) -> str:
    with pytest.raises(ConfigError) as caught:
        checked(*overrides)
    message = str(caught.value)
    assert "\n" not in message, message
    return message


def trains(config) -> dict:  # noqa: ANN001
    lines: list[tuple[int, dict[str, float]]] = []
    outcome = train(config, CPU, lambda step, row: lines.append((step, row)))
    assert outcome.status == "completed", outcome
    return outcome.summary


# ------------------------------------------------------------------------------------------------ models
def test_a_custom_model_trains_and_its_target_and_arguments_are_its_identity() -> None:
    config = checked("model=custom", "model.target=tests.user_parts:linear", "lr=0.05", *SMALL, *CLUSTERS)
    assert trains(config)["final_eval_loss"] < 2.3  # below chance (ln 10) after 30 steps
    without_bias = checked("model=custom", "model.target=tests.user_parts:linear", "+model.args.bias=false", *SMALL)
    other = checked("model=custom", "model.target=tests.user_parts:no_spec", *SMALL)
    same = checked("model=custom", "model.target=tests.user_parts:linear", *SMALL)
    ids = {run_id(c) for c in (checked("model=custom", "model.target=tests.user_parts:linear", *SMALL), same)}
    assert len(ids) == 1
    assert len({run_id(same), run_id(without_bias), run_id(other)}) == 3


def test_a_factory_without_spec_is_called_with_its_arguments_only() -> None:
    trains(checked("model=custom", "model.target=tests.user_parts:no_spec", "+model.args.width=4", *SMALL, *CLUSTERS))


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("nope.nets:Net", "model.target=nope.nets:Net cannot be imported: no module named 'nope'"),
        ("tests.user_parts:Missing", "model.target=tests.user_parts:Missing is not found: module tests.user_parts has"),
        ("tests.user_parts:raises", "model.target=tests.user_parts:raises raised ValueError while building the model"),
        ("tests.user_parts:not_a_module", "returned str, not a torch.nn.Module"),
        ("tests.user_parts:wrong_width", "the model's output [2, 11] on 2 examples does not fit data=clusters"),
        ("not-a-path", "model.target=not-a-path is not allowed: give an import path module:name"),
    ],
)
def test_a_bad_model_target_is_one_line_naming_it(target: str, expected: str) -> None:
    assert expected in one_line_error("model=custom", f"model.target={target}", *SMALL)


# -------------------------------------------------------------------------------------------------- data
def test_a_data_factory_of_torch_datasets_with_groups_trains_with_skew() -> None:
    config = checked(
        "data=custom",
        "data.target=tests.user_parts:blobs",
        "+data.args.n=300",
        "skew=cluster",
        "skew.steps=10",
        "batch_size=32",
        *SMALL,
    )
    summary = trains(config)
    assert summary["final_eval_acc"] > 0.5  # three classes: chance about 1/3


def test_a_regression_dataset_picks_mse_and_a_linear_model_fits_it() -> None:
    config = checked(
        "data=custom",
        "data.target=tests.user_parts:regression",
        "model=custom",
        "model.target=tests.user_parts:linear",
        "batch_size=16",
        *SMALL,
    )
    summary = trains(config)
    assert summary["final_eval_acc"] is None  # no accuracy for regression


def write_npz(path: Path, **arrays: np.ndarray) -> str:
    np.savez(path, **arrays)
    return str(path)


def good_arrays(n: int = 200) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, size=n)
    x = (rng.normal(size=(n, 6)) + y[:, None]).astype(np.float32)
    return {"x": x, "y": y, "group": (y % 2).astype(np.int64)}


def test_npz_data_from_disk_trains_with_a_seeded_split(tmp_path: Path) -> None:
    path = write_npz(tmp_path / "d.npz", **good_arrays())
    config = checked("data=npz", f"data.path={path}", "batch_size=32", "skew=cluster", "lr=0.01", *SMALL)
    assert trains(config)["final_eval_acc"] > 0.5
    arrays = good_arrays()
    with_eval = write_npz(tmp_path / "e.npz", **arrays, eval_x=arrays["x"][:50], eval_y=arrays["y"][:50])
    held = checked("data=npz", f"data.path={with_eval}", "batch_size=32", *SMALL)
    trains(held)


@pytest.mark.parametrize(
    ("arrays", "expected"),
    [
        (None, "is not a file"),
        ({"x": np.zeros((4, 2), np.float32), "label": np.zeros(4, np.int64)}, "it needs x and y (missing: y)"),
        ({"x": np.zeros((4, 2), np.float32), "y": np.zeros(3, np.int64)}, "same length, got x 4, y 3, group 4"),
        ({"x": np.full((8, 2), np.nan, np.float32), "y": np.zeros(8, np.int64)}, "inputs x hold NaN or inf"),
        ({"x": np.zeros((8, 2), np.float32), "y": np.array([0, 1, -3, 1, 0, 1, 0, 1])}, "class labels must lie in"),
    ],
)
def test_bad_npz_data_is_one_line(tmp_path: Path, arrays: dict | None, expected: str) -> None:
    path = tmp_path / "d.npz"
    if arrays is not None:
        np.savez(path, **arrays)
    message = one_line_error("data=npz", f"data.path={path}", "batch_size=2", *SMALL)
    assert message.startswith("data.path=") or message.startswith("data"), message
    assert expected in message


# --------------------------------------------------------------------------------------------- optimizer
def test_any_torch_optimizer_by_import_path_and_probes_say_why_they_skip() -> None:
    config = checked(
        "optimizer=custom",
        "optimizer.target=torch.optim.Adagrad",
        "lr=0.05",
        "probes=all",
        "probes.second_moment_every=10",
        "probes.sharpness_every=0",
        "probes.dead_relu_every=0",
        *SMALL,
        *CLUSTERS,
    )
    summary = trains(config)
    assert "Adagrad keeps no state these probes can read" in summary["probes_skipped"]["second_moment"]


def test_warmup_auto_reads_the_custom_optimizers_beta2_or_says_why_not() -> None:
    adam = make_config("optimizer=custom", "optimizer.target=torch.optim.Adam", "warmup=auto", "steps=3000")
    from ablate.run.schedules import resolve_warmup_steps

    assert resolve_warmup_steps(adam) == 2000  # torch.optim.Adam's default betas[1] = 0.999
    given = make_config(
        "optimizer=custom",
        "optimizer.target=torch.optim.Adam",
        "+optimizer.args.betas=[0.9,0.99]",
        "warmup=auto",
        "steps=3000",
    )
    assert resolve_warmup_steps(given) == 200
    with pytest.raises(ConfigError, match="warmup=auto is not allowed with optimizer=custom"):
        make_config("optimizer=custom", "optimizer.target=torch.optim.Adagrad", "warmup=auto", "steps=3000")


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (("optimizer.target=tests.user_parts:NotAnOptimizer",), "returned NotAnOptimizer, not a torch.optim.Optimizer"),
        (("optimizer.target=torch.optim.SGD", "+optimizer.args.momentum=-1"), "raised ValueError when called as"),
        (("optimizer.target=torch.optim.SGD", "+optimizer.args.lr=0.1"), "it holds lr, which ablate passes itself"),
    ],
)
def test_a_bad_optimizer_is_one_line(overrides: tuple[str, ...], expected: str) -> None:
    assert expected in one_line_error("optimizer=custom", *overrides, *SMALL)


# -------------------------------------------------------------------------------------------- schedules
def test_a_warmup_shape_and_a_base_schedule_by_import_path() -> None:
    from ablate.run.schedules import build_schedule

    config = checked(
        "warmup=10",
        "warmup_shape=tests.user_parts:half_warmup",
        "schedule=custom",
        "schedule.target=tests.user_parts:step_decay",
        "+schedule.args.drop_at=0.5",
        "lr=0.1",
        *SMALL,
    )
    values = build_schedule(config).values()
    assert values[:10] == [0.05] * 10  # half the peak during warmup
    assert values[10] == 0.1 and values[-1] == pytest.approx(0.01)  # the base: peak, then a drop to 0.1 x peak
    assert "factor(0, 10) = 2.0 is not allowed" in one_line_error(
        "warmup=10", "warmup_shape=tests.user_parts:too_big", *SMALL
    )
    assert "a base schedule starts at the peak" in one_line_error(
        "schedule=custom", "schedule.target=tests.user_parts:starts_low", *SMALL
    )


# ------------------------------------------------------------------------------- the command line, for real
def env_with_tests() -> dict[str, str]:
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH", "")]))
    return {
        **os.environ,
        "PYTHONPATH": path,
        "WANDB_MODE": "offline",
        "WANDB_SILENT": "true",
        "WANDB_ERROR_REPORTING": "false",
    }


@pytest.mark.slow
def test_an_unimportable_target_stops_a_study_before_any_run(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "ablate",
            "-m",
            "model=custom",
            "model.target=mypkg.nets:Missing",
            "warmup=0,10",
            "steps=20",
            "study=bad",
        ],
        cwd=tmp_path,
        env=env_with_tests(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert lines == [
        "error: model.target=mypkg.nets:Missing cannot be imported: no module named 'mypkg'; install the package "
        "(pip install -e <your project>), run from the directory that holds it, or add it to PYTHONPATH; "
        "nothing was run"
    ], done.stderr
    assert not list((tmp_path / "outputs").rglob("result.json"))


@pytest.mark.slow
def test_the_example_project_runs_end_to_end_through_the_real_cli(tmp_path: Path) -> None:
    """examples/my_project as its README says: make the data, a study over its optimizer and ablate's, analysis."""
    project = tmp_path / "my_project"
    source = REPO / "examples" / "my_project"
    shutil.copytree(source, project, ignore=lambda d, names: [n for n in names if Path(d) == source and n in SKIP])
    env = env_with_tests()
    run = lambda *args: subprocess.run(  # noqa: E731
        [sys.executable, *args], cwd=project, env=env, capture_output=True, text=True, timeout=600
    )
    made = run("-m", "mypkg.make_data", "data/spirals.npz")
    assert made.returncode == 0, made.stderr
    study = run(
        "-m",
        "ablate",
        "--config-dir",
        "conf",
        "-m",
        "model=resmlp",
        "data=spirals",
        "optimizer=lion,adam",
        "warmup=0,10",
        "warmup_shape=mypkg.schedules:quadratic",
        "steps=40",
        "eval_every=10",
        "batch_size=64",
        "tracker.progress=off",
        "study=mine",
    )
    assert study.returncode == 0, study.stderr[-3000:]
    sweep = project / "outputs" / "studies" / "mine"
    results = [json.loads(p.read_text()) for p in sweep.glob("*/result.json")]
    assert len(results) == 4 and all(r["status"] == "completed" for r in results)
    lion_dir = next(p for p in sweep.glob("*/config.yaml") if "optimizer=lion" in p.parent.name).parent
    lion_config = OmegaConf.load(lion_dir / "config.yaml")
    assert lion_config.model.target == "mypkg.nets.ResMLP" and lion_config.optimizer.args.betas == [0.9, 0.99]
    lion = json.loads((lion_dir / "result.json").read_text())
    assert set(lion["provenance"]["user_code"]) == {"model", "optimizer", "warmup_shape", "data"}
    analysis = run("-m", "analysis", str(sweep))
    assert analysis.returncode == 0, analysis.stderr[-3000:]
    assert (sweep / "report" / "report.md").is_file()
    run_dir = next(
        p.parent for p in sweep.glob("*/result.json") if "lion" in p.parent.name and "warmup=10" in p.parent.name
    )
    wandb_run = read_offline_run(run_dir)
    assert wandb_run["config"]["model.target"] == "mypkg.nets.ResMLP"
    assert wandb_run["config"]["optimizer.name"] == "lion"
    assert wandb_run["summary"]["status"] == "completed"


# -------------------------------------------------------------------------------------------------- loss
def test_a_user_loss_trains_and_its_chance_level_is_that_loss_of_an_input_blind_predictor() -> None:
    from ablate.run.objective import Objective, chance_level

    config = checked("loss=tests.user_parts:focal", "lr=0.01", *SMALL, *CLUSTERS)
    summary = trains(config)
    assert summary["final_eval_acc"] > 0.5  # accuracy stays the task kind's metric
    y_train, y_eval = torch.tensor([0, 0, 1, 2]), torch.tensor([0, 1])
    from tests.user_parts import focal, smooth_l1

    chance = Objective("classification", focal).chance(y_train, y_eval, 3)
    p = torch.tensor([3 / 7, 2 / 7, 2 / 7])  # Laplace-smoothed training frequencies
    expected = float(focal(p.log().expand(2, 3), y_eval).mean())
    assert (
        chance.loss == pytest.approx(expected) and chance.acc == chance_level("classification", y_train, y_eval, 3).acc
    )
    reg = Objective("regression", smooth_l1).chance(torch.tensor([1.0, 3.0]), torch.tensor([2.0, 4.5]), 1)
    assert reg.loss == pytest.approx((0.0 + (2.5 - 0.5)) / 2)  # Huber of 0 and 2.5 around the mean 2
    assert run_id(config) != run_id(checked(*SMALL, *CLUSTERS, "lr=0.01"))


def test_a_user_loss_that_does_not_return_one_value_per_example_is_one_line() -> None:
    assert "returned [] on 2 examples: a loss returns one finite value per example" in one_line_error(
        "loss=tests.user_parts:mean_loss", *SMALL
    )
    assert "loss=nope is not allowed" in one_line_error("loss=nope", *SMALL)
