"""analysis.regime: stable lr, its ratio to no warmup, LR sensitivity, the grid check, the CLI and the figures.

Hand-made runs tables (and, for the CLI, hand-made run records) with exact, hand-computed expectations.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from analysis import regime as R
from analysis import regime_plots, stats
from analysis.plots import save

REPO = Path(__file__).resolve().parent.parent
T, U, D = R.TRAINED, R.UNTRAINED, R.DIVERGED


def run(lr: float, warmup: int, seed: int, outcome: str | None, loss: float | None = None, **extra: Any) -> dict:
    """One row of a runs table; the status follows the outcome (None: a failed run)."""
    status = {None: "failed", D: "diverged"}.get(outcome, "completed")
    if loss is None and outcome in (T, U):
        loss = 0.5 if outcome == T else 2.3
    return {
        "status": status,
        "outcome": outcome,
        "optimizer": "sgd",
        "lr": lr,
        "warmup": warmup,
        "seed": seed,
        "final_eval_loss": loss if outcome != D else math.nan,
        "first_train_loss": 2.3,
        "chance_loss": 2.3,
        **extra,
    }


def table(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows)


def outcomes_grid(grid: list[float], warmup: int, seed: int, found: str, **extra: Any) -> list[dict]:
    """Runs of one seed at one warmup along the grid; ``found`` spells outcomes: T, U, D, or - for no run."""
    letters = {"T": T, "U": U, "D": D}
    return [run(lr, warmup, seed, letters[c], **extra) for lr, c in zip(grid, found, strict=True) if c != "-"]


GRID = [0.01, 0.02, 0.04, 0.08]


# ---------------------------------------------------------------------------------------------------- stable lr


def test_stable_lr_per_seed_contiguous_censored_and_nan() -> None:
    rows = [
        *outcomes_grid(GRID, 0, 0, "TTDD"),  # 0.02
        *outcomes_grid(GRID, 0, 1, "TDTT"),  # 0.01: trained again at 0.04, 0.08 does not count
        *outcomes_grid(GRID, 0, 2, "TTTT"),  # 0.08, at the top: censored
        *outcomes_grid(GRID, 0, 3, "UTTT"),  # NaN: untrained at the smallest rate
        *outcomes_grid(GRID, 0, 4, "TT-D"),  # 0.02, no result at 0.04: censored
    ]
    found = R.stable_lr(table(rows), by=[])
    per_seed = found.per_seed.set_index("seed")
    assert per_seed["lr_star"].iloc[:3].tolist() == [0.02, 0.01, 0.08]
    assert math.isnan(per_seed.at[3, "lr_star"]) and per_seed.at[4, "lr_star"] == 0.02
    assert per_seed["censored"].tolist() == [False, False, True, False, True]
    assert per_seed.at[1, "note"] == "trained again at 0.04, 0.08 (not contiguous)"
    assert per_seed.at[2, "note"] == "trained up to the top of the grid: at least 0.08"
    assert per_seed.at[3, "note"].startswith("not trained at the smallest lr 0.01")
    assert per_seed.at[4, "note"] == "no result at lr 0.04: at least 0.02"
    # all seeds: seed 3 is untrained at 0.01, so no rate trains for every seed
    assert math.isnan(found.all_seeds["lr_star"].iloc[0])


def test_stable_lr_all_seeds_is_the_contiguous_minimum() -> None:
    rows = [*outcomes_grid(GRID, 0, 0, "TTDD"), *outcomes_grid(GRID, 0, 1, "TTTD"), *outcomes_grid(GRID, 0, 2, "TTTT")]
    rows += [*outcomes_grid(GRID, 100, 0, "TTTT"), *outcomes_grid(GRID, 100, 1, "TTTT")]
    all_seeds = R.stable_lr(table(rows), by=[]).all_seeds.set_index("warmup")
    assert all_seeds.at[0, "lr_star"] == 0.02 and not all_seeds.at[0, "censored"]
    assert (all_seeds.at[0, "seed_min"], all_seeds.at[0, "seed_max"]) == (0.02, 0.08)
    assert all_seeds.at[100, "lr_star"] == 0.08 and all_seeds.at[100, "censored"]  # at the top edge: at least
    assert all_seeds["n_seeds"].tolist() == [3, 2]


def test_stable_lr_all_seeds_censored_only_when_no_seed_fails_next() -> None:
    # seed 0 has no run at 0.04, seed 1 diverges there: the all-seeds value 0.02 is exact
    rows = [*outcomes_grid(GRID, 0, 0, "TT-T"), *outcomes_grid(GRID, 0, 1, "TTDD")]
    assert not R.stable_lr(table(rows), by=[]).all_seeds["censored"].iloc[0]
    rows = [*outcomes_grid(GRID, 0, 0, "TT-T"), *outcomes_grid(GRID, 0, 1, "TTTD")]
    assert R.stable_lr(table(rows), by=[]).all_seeds["censored"].iloc[0]


def test_setups_are_separate_and_inferred() -> None:
    rows = [*outcomes_grid(GRID, 0, 0, "TDDD"), *outcomes_grid(GRID, 0, 0, "TTTD", optimizer="adam")]
    found = R.stable_lr(table(rows))
    assert found.by == ["optimizer"]
    assert found.all_seeds.set_index("optimizer")["lr_star"].to_dict() == {"adam": 0.04, "sgd": 0.01}


def test_outcome_fallback_for_records_without_one() -> None:
    runs = table([run(0.01, 0, 0, T, loss=0.5), run(0.02, 0, 0, U, loss=2.4), run(0.04, 0, 0, D)]).drop(
        columns="outcome"
    )
    assert R.outcomes(runs).tolist() == [T, U, D]


# ---------------------------------------------------------------------------------------------------- ratio


def test_ratio_geometric_mean_paired_by_seed() -> None:
    rows = []
    for seed, (base, warm) in enumerate([("TTDD", "TTTD"), ("TDDD", "TTTD"), ("TTTD", "TTTD")]):
        rows += outcomes_grid(GRID, 0, seed, base) + outcomes_grid(GRID, 100, seed, warm)
    # ratios 0.04/0.02 = 2, 0.04/0.01 = 4, 0.04/0.04 = 1: geometric mean (2 * 4 * 1) ** (1/3) = 2
    ratio = R.stable_lr_ratio(table(rows), by=[])
    row = ratio.iloc[0]
    assert row["warmup"] == 100 and row["n"] == 3 and not row["censored"]
    assert row["ratio"] == pytest.approx(2.0, rel=1e-12)
    assert row["ratio_low"] <= row["ratio"] <= row["ratio_high"]
    assert 1.0 - 1e-12 <= row["ratio_low"] and row["ratio_high"] <= 4.0 + 1e-12
    assert row["all_seeds_ratio"] == pytest.approx(0.04 / 0.01)
    assert row["ci_note"] == ""


def test_ratio_with_one_seed_has_no_interval_and_flags_censoring() -> None:
    rows = outcomes_grid(GRID, 0, 0, "TDDD") + outcomes_grid(GRID, 500, 0, "TTTT")
    row = R.stable_lr_ratio(table(rows), by=[]).iloc[0]
    assert row["ratio"] == pytest.approx(8.0) and row["n"] == 1
    assert math.isnan(row["ratio_low"]) and math.isnan(row["ratio_high"])
    assert row["ci_note"] == "fewer than 2 seeds (1): no interval"
    assert row["censored"] and "at least" in row["note"]


# ---------------------------------------------------------------------------------------------------- grid check


def test_grid_check() -> None:
    assert R.grid_max_ratio([0.01, 0.02, 0.04]) == pytest.approx(2.0)
    assert R.grid_max_ratio([0.1]) != R.grid_max_ratio([0.1])  # NaN
    assert R.grid_warning([0.01, 0.02, 0.04]).startswith("warning: lr grid is coarse")
    assert "x2 " in R.grid_warning([0.01, 0.02, 0.04])
    assert R.grid_warning(R.lr_grid(0.01, 0.16, 2)) == ""
    assert R.grid_warning([1, 3, 10, 30], "optimizer=sgd").startswith("warning: optimizer=sgd: lr grid is coarse")


def test_lr_grid_construction() -> None:
    grid = R.lr_grid(0.01, 0.16, per_octave=2)  # 4 octaves, 8 steps of sqrt 2
    assert len(grid) == 9 and grid[0] == 0.01 and grid[-1] == 0.16 and grid[2] == 0.02
    assert np.allclose(np.array(grid[1:]) / np.array(grid[:-1]), math.sqrt(2), rtol=1e-5)
    uneven = R.lr_grid(0.001, 0.3, per_octave=2)  # 8.23 octaves -> 17 steps, ratio 300 ** (1/17) = 1.399
    assert len(uneven) == 18 and uneven[-1] == 0.3
    assert R.grid_max_ratio(uneven) <= math.sqrt(2)
    assert len(R.lr_grid(0.01, 0.16, per_octave=1)) == 5
    assert R.lr_grid(0.05, 0.05) == [0.05]
    with pytest.raises(R.UsageError, match="lr-min"):
        R.lr_grid(0.1, 0.01)


def test_find_command_dry_run(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["find", "--study", "s", "--lr-min", "0.01", "--lr-max", "0.04", "--warmup", "0,50", "--seeds", "3"]
    assert R.main([*argv, "--dry-run", "--", "optimizer=sgd", "steps=30"]) == 0
    printed = capsys.readouterr().out.strip()
    assert printed == (
        "python -m ablate -m study=s lr=0.01,0.0141421,0.02,0.0282843,0.04 warmup=0,50 seed=range(0,3) "
        "tracker=local tracker.progress=off optimizer=sgd steps=30"
    )
    assert R.study_dir_of("s", ["hydra.sweep.dir=/tmp/x"]) == Path("/tmp/x")
    assert R.study_dir_of("s", []) == REPO / "outputs" / "studies" / "s"


# ---------------------------------------------------------------------------------------------------- sensitivity


def test_lr_sensitivity_hand_computed() -> None:
    grid = [0.01, 0.1, 1.0]  # even in log lr: trapezoid weights 1/4, 1/2, 1/4
    seed0 = [run(0.01, 0, 0, T, loss=0.5), run(0.1, 0, 0, T, loss=0.3), run(1.0, 0, 0, D)]
    # seed 0: L_init = 2.3; capped L = 0.5, 0.3, 2.3 (diverged -> cap); best = 0.3
    #   f = 0.2, 0.0, 2.0; S = 0.2/4 + 0/2 + 2.0/4 = 0.05 + 0.5 = 0.55
    seed1 = [run(0.01, 0, 1, U, loss=2.5), run(0.1, 0, 1, T, loss=0.4)]  # no run at 1.0
    # seed 1: capped L = min(2.5, 2.3) = 2.3, 0.4, 2.3 (missing -> cap); best = 0.4
    #   f = 1.9, 0.0, 1.9; S = 1.9/4 + 0 + 1.9/4 = 0.95
    per_seed = R.lr_sensitivity_per_seed(table(seed0 + seed1), by=[])
    assert per_seed["sensitivity"].tolist() == pytest.approx([0.55, 0.95])
    assert per_seed["best_loss"].tolist() == pytest.approx([0.3, 0.4])
    assert per_seed["n_capped"].tolist() == [1, 2] and per_seed["n_lr"].tolist() == [3, 3]
    summary = R.lr_sensitivity(table(seed0 + seed1), by=[]).iloc[0]
    assert summary["sensitivity"] == pytest.approx(0.75) and summary["n"] == 2  # (0.55 + 0.95) / 2
    assert 0.55 - 1e-12 <= summary["sensitivity_low"] <= summary["sensitivity_high"] <= 0.95 + 1e-12
    assert R.log_uniform_mean(grid, [0.2, 0.0, 2.0]) == pytest.approx(0.55)


def test_seed_bootstrap_is_the_mean_with_stats_interval_and_its_note() -> None:
    values = np.array([0.2, 0.5, 0.3, 0.9, 0.4])
    estimate, low, high, note = R.SeedBootstrap().mean(values)
    assert (estimate, low, high) == stats.estimate_with_interval([values], stats.mean)  # B = 2000, rng 0, 95%
    assert estimate == pytest.approx(0.46) and low < estimate < high and note == ""
    assert (
        R.SeedBootstrap(n_resamples=500, seed=3).mean(values)[1:3]
        == stats.estimate_with_interval([values], stats.mean, 500, 0.95, 3)[1:]
    )
    one = R.SeedBootstrap().mean(np.array([0.7]))
    assert one[0] == 0.7 and math.isnan(one[1]) and math.isnan(one[2]) and "fewer than 2 seeds" in one[3]


def test_log_uniform_mean_uneven_grid() -> None:
    # x = ln 1, ln 10, ln 1000: widths ln 10 and 2 ln 10, span 3 ln 10
    # (1 * (1 + 2) / 2 + 2 * (2 + 5) / 2) / 3 = (1.5 + 7) / 3 = 8.5 / 3
    assert R.log_uniform_mean([1, 10, 1000], [1, 2, 5]) == pytest.approx(8.5 / 3)
    assert R.log_uniform_mean([0.1], [0.0]) == 0.0


def test_sensitivity_is_per_warmup() -> None:
    rows = [run(0.01, 0, 0, T, loss=1.0), run(0.1, 0, 0, T, loss=1.0)]
    rows += [run(0.01, 100, 0, T, loss=0.2), run(0.1, 100, 0, T, loss=0.4)]
    # per W: W=0 is flat (0); W=100: best 0.2 of its own sweep, f = 0, 0.2 -> S = 0.1
    values = R.lr_sensitivity(table(rows), by=[]).set_index("warmup")["sensitivity"]
    assert values.to_dict() == pytest.approx({0: 0.0, 100: 0.1})


# ---------------------------------------------------------------------------------------------------- figures, CLI


def synthetic_runs(seeds: int = 5, optimizers: tuple[str, ...] = ("sgd", "adam")) -> pd.DataFrame:
    """A realistic study: a sqrt-2 lr grid x warmup 0, 100, 500 x seeds; warmup moves the divergence cliff right."""
    rng = np.random.default_rng(1)
    rows = []
    for optimizer in optimizers:
        grid = R.lr_grid(0.01, 0.64, 2) if optimizer == "sgd" else R.lr_grid(0.0005, 0.032, 2)
        best_lr = grid[4]
        for warmup, cliff in ((0, grid[7]), (100, grid[9]), (500, grid[11])):
            for seed in range(seeds):
                seed_cliff = cliff * 2 ** rng.normal(0, 0.35)
                for lr in grid:
                    loss = 0.3 + 0.08 * math.log2(lr / best_lr) ** 2 + rng.normal(0, 0.02)
                    if lr > seed_cliff:
                        outcome = D if lr > 1.5 * seed_cliff else U
                        loss = math.nan if outcome == D else 2.3 + rng.normal(0, 0.01)
                    elif loss > 2.0:
                        outcome = U
                    else:
                        outcome = T
                    rows.append(run(lr, warmup, seed, outcome, loss, optimizer=optimizer))
    return table(rows)


def test_figures_render(tmp_path: Path) -> None:
    runs = synthetic_runs(seeds=3)
    written = save(regime_plots.phase_diagram(runs), tmp_path / "phase", ("png",))
    written += save(regime_plots.sensitivity_curves(runs), tmp_path / "curves", ("png",))
    assert all(path.stat().st_size > 10_000 for path in written)
    assert regime_plots.majority([T, T, D, D]) == D and regime_plots.majority([T, T, U]) == T


def write_study(study_dir: Path, runs: pd.DataFrame) -> None:
    """Run records (config.yaml, metrics.jsonl, result.json) for every row of a runs table."""
    for index, row in runs.reset_index(drop=True).iterrows():
        run_dir = study_dir / str(index)
        run_dir.mkdir(parents=True)
        config = {"optimizer": {"name": row["optimizer"]}, "lr": float(row["lr"]), "warmup": int(row["warmup"])}
        config.update(seed=int(row["seed"]), steps=30, model={"name": "mlp"})
        (run_dir / "config.yaml").write_text(yaml.safe_dump(config))
        (run_dir / "metrics.jsonl").write_text(json.dumps({"step": 0, "train/loss": 2.3}) + "\n")
        loss = row["final_eval_loss"]
        summary = {
            "final_eval_loss": None if math.isnan(loss) else loss,
            "first_train_loss": row["first_train_loss"],
            "chance_loss": row["chance_loss"],
            "outcome": row["outcome"],
        }
        record = {
            "run_id": hashlib.sha256(f"{study_dir}/{index}".encode()).hexdigest()[:16],
            "status": row["status"],
            "study": {"factors": ["optimizer", "lr", "warmup", "seed"]},
            "warmup_steps": int(row["warmup"]),
            "summary": summary,
        }
        (run_dir / "result.json").write_text(json.dumps(record))


def test_cli_writes_tables_and_figures(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_study(tmp_path / "study", synthetic_runs(seeds=2, optimizers=("sgd",)))
    assert R.main([str(tmp_path / "study"), "--out", str(tmp_path / "out")]) == 0
    printed = capsys.readouterr().out
    assert "lr*(W)" in printed and "LR sensitivity" in printed
    regime = pd.read_csv(tmp_path / "out" / "regime.csv")
    assert regime["warmup"].tolist() == [0, 100, 500] and regime["grid_max_ratio"].iloc[0] == pytest.approx(
        2**0.5, rel=1e-5
    )
    assert (tmp_path / "out" / "lr_sensitivity.csv").exists() and (tmp_path / "out" / "phase_diagram.png").exists()


def test_cli_bad_path_is_one_line_exit_2(tmp_path: Path) -> None:
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true", "WANDB_ERROR_REPORTING": "false"}
    done = subprocess.run(
        [sys.executable, "-m", "analysis.regime", str(tmp_path / "nowhere")],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith(f"error: {tmp_path / 'nowhere'} is not a study: no such directory")


def test_cli_bad_lr_column_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_study(tmp_path / "study", synthetic_runs(seeds=1, optimizers=("sgd",)).head(6))
    assert R.main([str(tmp_path / "study"), "--lr-col", "nope"]) == 2
    assert "no learning rate column 'nope'" in capsys.readouterr().err


@pytest.mark.slow
def test_find_runs_a_real_study(tmp_path: Path) -> None:
    """3 rates x 2 warmups x 2 seeds of 30 steps, run by the real command, then read."""
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true", "WANDB_ERROR_REPORTING": "false"}
    sweep = tmp_path / "study"
    argv = ["find", "--study", "regime-test", "--lr-min", "0.001", "--lr-max", "0.002", "--warmup", "0,10"]
    argv += ["--seeds", "2", "--out", str(tmp_path / "out"), "--", "steps=30", "eval_every=10"]
    argv += ["data.n_train=512", "data.n_eval=256", f"hydra.sweep.dir={sweep}"]
    done = subprocess.run(
        [sys.executable, "-m", "analysis.regime", *argv], cwd=REPO, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-2000:]
    regime = pd.read_csv(tmp_path / "out" / "regime.csv")
    assert regime["warmup"].tolist() == [0, 10] and regime["n_seeds"].tolist() == [2, 2]
    per_seed = pd.read_csv(tmp_path / "out" / "stable_lr_per_seed.csv")
    assert len(per_seed) == 4 and (tmp_path / "out" / "phase_diagram.png").exists()


def test_lr_scale_axis_ignores_the_derived_lr() -> None:
    rows = [run(s * 0.1, 0, 0, c, optimizer="sgd", lr_scale=s) for s, c in ((1, T), (2, T), (4, D))]
    rows += [run(s * 0.001, 0, 0, c, optimizer="adam", lr_scale=s) for s, c in ((1, T), (2, D), (4, D))]
    found = R.stable_lr(table(rows), lr_col="lr_scale")
    assert found.by == ["optimizer"]
    assert found.all_seeds.set_index("optimizer")["lr_star"].to_dict() == {"adam": 1, "sgd": 2}
