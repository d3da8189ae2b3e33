"""analysis.stats against values computed by hand and against scipy's estimators of the same quantities."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from analysis import stats

Z95 = 1.959963984540054


def runs_table(values: dict[tuple[int, int], float], status: str = "completed") -> pd.DataFrame:
    """A runs table with factor ``warmup`` and ``seed``: ``{(warmup, seed): final_eval_loss}``."""
    rows = [
        {"study": "s", "run": f"{w}-{s}", "warmup": w, "seed": s, "status": status, "final_eval_loss": v}
        for (w, s), v in values.items()
    ]
    return pd.DataFrame(rows)


def scipy_interval(values: np.ndarray, statistic, seed: int = 0) -> tuple[float, float]:
    result = scipy_stats.bootstrap(
        (values,), statistic, method="percentile", n_resamples=2000, rng=np.random.default_rng(seed)
    )
    return result.confidence_interval.low, result.confidence_interval.high


# ---------------------------------------------------------------------------------------------------- aggregate

VALUES = np.array([1.0, 2.0, 3.0, 4.0, 10.0, 0.5, 7.0, 8.0])


def test_point_estimates_are_mean_median_and_iqm() -> None:
    runs = runs_table({(0, seed): value for seed, value in enumerate(VALUES)})
    row = stats.aggregate(runs, "final_eval_loss", ["warmup"]).iloc[0]
    assert row["n_runs"] == row["n"] == 8
    assert row["mean"] == pytest.approx(35.5 / 8)
    assert row["median"] == 3.5  # (3 + 4) / 2
    # sorted 0.5 1 2 3 | 4 7 8 10: cut floor(0.25 * 8) = 2 from each end, mean of 2 3 4 7
    assert row["iqm"] == pytest.approx(4.0)
    assert row["iqm"] == pytest.approx(scipy_stats.trim_mean(VALUES, 0.25))
    assert bool(row["ci_available"]) and row["ci_note"] == ""


@pytest.mark.parametrize(
    ("name", "statistic"),
    [
        ("mean", np.mean),
        ("median", np.median),
        ("iqm", lambda x, axis: scipy_stats.trim_mean(x, 0.25, axis=axis)),
    ],
)
def test_bootstrap_interval_is_scipys_percentile_bootstrap(name: str, statistic) -> None:
    runs = runs_table({(0, seed): value for seed, value in enumerate(VALUES)})
    row = stats.aggregate(runs, "final_eval_loss", ["warmup"], seed=3).iloc[0]
    low, high = scipy_interval(VALUES, statistic, seed=3)
    # same draws (rng.integers(0, n, (B, n))) and quantiles: equal up to rounding
    assert row[f"{name}_low"] == pytest.approx(low, rel=1e-9)
    assert row[f"{name}_high"] == pytest.approx(high, rel=1e-9)
    assert row[f"{name}_low"] <= row[name] <= row[f"{name}_high"]


def test_each_cell_gets_its_own_interval_whatever_other_cells_exist() -> None:
    alone = runs_table({(0, seed): value for seed, value in enumerate(VALUES)})
    together = pd.concat([runs_table({(20, seed): 1.0 + seed for seed in range(5)}), alone])
    first = stats.aggregate(alone, "final_eval_loss", ["warmup"])
    second = stats.aggregate(together, "final_eval_loss", ["warmup"])
    assert list(second["warmup"]) == [0, 20]
    pd.testing.assert_series_equal(first.iloc[0], second.iloc[0], check_names=False)


def test_one_seed_gives_no_interval_rather_than_zero_width() -> None:
    runs = runs_table({(0, 0): 0.7, (20, 0): 0.6, (20, 1): 0.5})
    table = stats.aggregate(runs, "final_eval_loss", ["warmup"])
    single = table[table["warmup"] == 0].iloc[0]
    assert single["mean"] == single["median"] == single["iqm"] == 0.7
    for name in ("mean", "median", "iqm"):
        assert math.isnan(single[f"{name}_low"]) and math.isnan(single[f"{name}_high"])
    assert not single["ci_available"]
    assert "fewer than 2 seeds" in single["ci_note"]
    assert table[table["warmup"] == 20].iloc[0]["ci_available"]


def test_failed_runs_and_missing_values_are_left_out_and_counted() -> None:
    runs = runs_table({(0, 0): 1.0, (0, 1): 3.0, (0, 2): math.nan, (0, 3): math.inf})
    runs.loc[3, "status"] = "diverged"
    failed = runs_table({(0, 9): 100.0}, status="failed")
    row = stats.aggregate(pd.concat([runs, failed]), "final_eval_loss", ["warmup"]).iloc[0]
    assert (row["n_runs"], row["n"], row["mean"]) == (4, 2, 2.0)


def test_stratified_bootstrap_resamples_within_each_stratum() -> None:
    # Two studies, each with constant values: within-stratum resamples never change the pooled mean (2.0),
    # while resampling the pooled values ignores the strata and does.
    runs = runs_table({(0, 0): 1.0, (0, 1): 1.0, (0, 2): 3.0, (0, 3): 3.0})
    runs["study"] = ["a", "a", "b", "b"]
    stratified = stats.aggregate(runs, "final_eval_loss", ["warmup"], strata="study").iloc[0]
    pooled = stats.aggregate(runs, "final_eval_loss", ["warmup"]).iloc[0]
    assert (stratified["mean_low"], stratified["mean"], stratified["mean_high"]) == (2.0, 2.0, 2.0)
    assert pooled["mean_low"] < 2.0 < pooled["mean_high"]


def test_stratified_interval_is_the_hand_written_stratified_bootstrap() -> None:
    # By hand: per stratum in order, rng.integers(0, n_g, (B, n_g)); statistic of the pooled resample; quantiles.
    runs = runs_table({(0, seed): value for seed, value in enumerate(VALUES)})
    runs["study"] = ["a", "a", "a", "b", "b", "b", "b", "b"]
    row = stats.aggregate(runs, "final_eval_loss", ["warmup"], strata="study", seed=5).iloc[0]
    rng = np.random.default_rng(5)
    groups = [VALUES[:3], VALUES[3:]]
    pooled = np.concatenate([g[rng.integers(0, len(g), (2000, len(g)))] for g in groups], axis=1)
    for name, statistic in stats.ESTIMATORS.items():
        low, high = np.quantile(statistic(pooled), [0.025, 0.975])
        assert (row[f"{name}_low"], row[f"{name}_high"]) == pytest.approx((low, high), rel=1e-9)


def test_stratum_with_one_seed_gives_no_interval() -> None:
    runs = runs_table({(0, 0): 1.0, (0, 1): 2.0, (0, 2): 3.0})
    runs["study"] = ["a", "a", "b"]
    row = stats.aggregate(runs, "final_eval_loss", ["warmup"], strata="study").iloc[0]
    assert not row["ci_available"] and "in a stratum" in row["ci_note"]
    assert math.isnan(row["mean_low"])


def test_missing_factor_value_is_a_cell_of_its_own() -> None:
    runs = runs_table({(0, 0): 1.0, (0, 1): 2.0, (20, 0): 3.0})
    runs["optimizer.beta2"] = [0.999, 0.999, math.nan]  # e.g. sgd has no beta2
    table = stats.aggregate(runs, "final_eval_loss", ["optimizer.beta2"])
    assert list(table["n"]) == [2, 1]
    assert math.isnan(table["optimizer.beta2"].iloc[1])


def test_no_factors_aggregates_the_whole_table() -> None:
    table = stats.aggregate(runs_table({(0, 0): 1.0, (20, 1): 3.0}), "final_eval_loss", [])
    assert len(table) == 1 and table["mean"].iloc[0] == 2.0


# ---------------------------------------------------------------------------------------------------- pairs


def test_paired_effect_by_hand() -> None:
    control = {(0, 0): 1.0, (0, 1): 2.0, (0, 2): 3.0}
    treatment = {(20, 0): 0.5, (20, 1): 2.5, (20, 2): 2.0, (20, 3): 9.0}  # seed 3 has no control
    table = stats.paired_effects(runs_table({**control, **treatment}), "final_eval_loss", ["warmup"])
    row = table.iloc[0]
    assert (row["warmup"], row["control"], row["n_pairs"], row["n_unpaired"]) == (20, "warmup=0", 3, 1)
    assert row["mean_diff"] == pytest.approx((-0.5 + 0.5 - 1.0) / 3)
    assert row["p_improvement"] == pytest.approx(2 / 3)  # lower loss in seeds 0 and 2
    low, high = scipy_interval(np.array([-0.5, 0.5, -1.0]), np.mean)
    assert (row["mean_diff_low"], row["mean_diff_high"]) == pytest.approx((low, high), rel=1e-9)
    assert 0 <= row["p_improvement_low"] <= row["p_improvement"] <= row["p_improvement_high"] <= 1


def test_paired_ties_count_half_and_accuracy_is_better_higher() -> None:
    runs = runs_table({(0, 0): 0.8, (0, 1): 0.8, (50, 0): 0.9, (50, 1): 0.8}).rename(
        columns={"final_eval_loss": "final_eval_acc"}
    )
    row = stats.paired_effects(runs, "final_eval_acc", ["warmup"]).iloc[0]
    assert row["p_improvement"] == pytest.approx(0.75)  # one better, one tie
    assert row["mean_diff"] == pytest.approx(0.05)


def test_paired_control_can_be_any_factor_value_and_matches_other_factors() -> None:
    rows = []
    for skew in ("none", "cluster"):
        for warmup in (0, 100):
            for seed in (0, 1):
                loss = 1.0 + (0.5 if skew == "cluster" else 0) - (0.3 if warmup == 100 and skew == "cluster" else 0)
                rows.append({"warmup": warmup, "skew": skew, "seed": seed, "status": "completed", "loss": loss})
    table = stats.paired_effects(pd.DataFrame(rows), "loss", ["warmup", "skew"], control="skew=none")
    assert list(table["skew"]) == ["cluster", "cluster"]
    assert list(table["mean_diff"]) == pytest.approx([0.5, 0.2])  # each warmup against its own control
    assert list(table["n_pairs"]) == [2, 2]
    assert list(table["control"]) == ["skew=none", "skew=none"]


def test_missing_control_names_the_available_values() -> None:
    runs = runs_table({(20, 0): 1.0, (50, 0): 2.0})
    with pytest.raises(ValueError, match=r"no control runs with warmup=0: warmup takes 20, 50"):
        stats.paired_effects(runs, "final_eval_loss", ["warmup"])
    with pytest.raises(ValueError, match="not a column"):
        stats.paired_effects(runs, "final_eval_loss", ["warmup"], control="skew=none")
    with pytest.raises(ValueError, match="factor=value"):
        stats.paired_effects(runs, "final_eval_loss", ["warmup"], control="warmup")


def test_control_repeated_for_one_seed_is_an_error() -> None:
    runs = pd.concat([runs_table({(0, 0): 1.0, (20, 0): 2.0}), runs_table({(0, 0): 1.5})])
    with pytest.raises(ValueError, match="not unique"):
        stats.paired_effects(runs, "final_eval_loss", ["warmup"])


def test_one_pair_gives_no_interval() -> None:
    row = stats.paired_effects(runs_table({(0, 0): 1.0, (20, 0): 0.5}), "final_eval_loss", ["warmup"]).iloc[0]
    assert row["n_pairs"] == 1 and row["mean_diff"] == -0.5 and row["p_improvement"] == 1.0
    assert math.isnan(row["mean_diff_low"]) and not row["ci_available"]


def test_higher_is_better_from_the_metric_name() -> None:
    assert stats.higher_is_better("eval/acc") and stats.higher_is_better("final_eval_acc")
    assert not stats.higher_is_better("eval/rest/loss") and not stats.higher_is_better("best_eval_loss")
    with pytest.raises(ValueError, match="higher_is_better"):
        stats.higher_is_better("opt/grad_norm")


# ---------------------------------------------------------------------------------------------------- time to target


def history_table(curves: dict[str, list[float]], eval_every: int = 10) -> pd.DataFrame:
    """History rows ``(study s, run, step, eval/loss)`` with an evaluation every ``eval_every`` steps."""
    rows = [
        {"study": "s", "run": run, "step": i * eval_every, "eval/loss": value}
        for run, values in curves.items()
        for i, value in enumerate(values)
    ]
    history = pd.DataFrame(rows).astype({"eval/loss": "float32"})
    return history.astype({"study": "category", "run": "category"})


def test_time_to_target_first_crossing_and_censoring() -> None:
    history = history_table(
        {
            "a": [2.0, 1.2, 0.9, 1.1, 0.8],  # first <= 1.0 at step 20
            "b": [2.0, 1.5, 1.2, 1.1, 1.05],  # never: censored at its last step, 40
            "c": [2.0, 1.4, math.nan],  # diverged before reaching: censored at 10, its last finite value
        }
    )
    runs = pd.DataFrame(
        {"study": "s", "run": ["a", "b", "c"], "warmup": [0, 0, 0], "status": ["completed", "completed", "diverged"]}
    )
    times = stats.time_to_target(runs, history, "eval/loss", 1.0, ["warmup"])
    assert list(times.columns) == ["study", "run", "warmup", "status", "step", "reached"]
    assert list(times["step"]) == [20, 40, 10]
    assert list(times["reached"]) == [True, False, False]
    accuracy = history.assign(**{"eval/acc": 1 - history["eval/loss"] / 2})
    times = stats.time_to_target(runs, accuracy, "eval/acc", 0.45)  # 1 - 1.1/2 = 0.45 first reached by a at 20
    assert list(times["step"]) == [20, 30, 10] and list(times["reached"]) == [True, True, False]


def test_kaplan_meier_by_hand() -> None:
    # reached at 10, 20, 30; censored at 15 and 40
    times = pd.DataFrame({"step": [10, 15, 20, 30, 40], "reached": [True, False, True, True, False]})
    curve = stats.kaplan_meier(times)
    assert list(curve["step"]) == [10, 15, 20, 30, 40]
    assert list(curve["n_at_risk"]) == [5, 4, 3, 2, 1]
    assert list(curve["n_censored"]) == [0, 1, 0, 0, 1]
    # S = 4/5, 4/5, 4/5 * 2/3, 4/5 * 2/3 * 1/2, unchanged
    expected_not_reached = [0.8, 0.8, 0.8 * 2 / 3, 0.8 * 2 / 3 / 2, 0.8 * 2 / 3 / 2]
    assert list(curve["fraction_reached"]) == pytest.approx([1 - s for s in expected_not_reached])
    median = stats.median_time_to_target(times).iloc[0]
    assert (median["median_step"], median["n_runs"], median["n_reached"], median["note"]) == (30, 5, 3, "")


def test_median_time_to_target_exactly_half_and_never() -> None:
    times = pd.DataFrame(
        {
            "warmup": [0, 0, 100, 100, 100],
            "step": [10, 50, 20, 50, 50],
            "reached": [True, False, True, False, False],
        }
    )
    table = stats.median_time_to_target(times, ["warmup"])
    assert table["median_step"].iloc[0] == 10  # 1 of 2 reached at 10: S = 1/2 counts as passed
    assert math.isnan(table["median_step"].iloc[1]) and table["note"].iloc[1] == "not reached"
    curves = stats.kaplan_meier(times, ["warmup"])
    assert list(curves["warmup"]) == [0, 0, 100, 100]
    assert list(curves["fraction_reached"]) == pytest.approx([0.5, 0.5, 1 / 3, 1 / 3])


def test_default_target_is_the_best_cells_median_final_value_loosened_by_5_percent() -> None:
    history = history_table({"a": [2.0, 0.4], "b": [2.0, 0.6], "c": [2.0, 0.5], "d": [2.0, 0.3], "e": [2.0, 9.0]})
    runs = pd.DataFrame(
        {
            "study": "s",
            "run": ["a", "b", "c", "d", "e"],
            "warmup": [0, 0, 100, 100, 100],
            "status": ["completed"] * 4 + ["failed"],  # failed runs do not set the target
        }
    )
    # medians: warmup 0 -> 0.5, warmup 100 -> 0.4 (best); 0.4 * 1.05
    assert stats.default_target(runs, history, "eval/loss", ["warmup"]) == pytest.approx(0.42, rel=1e-6)
    accuracy = history.assign(**{"eval/acc": 1 - history["eval/loss"]})  # medians 0.5 and 0.6 (best)
    assert stats.default_target(runs, accuracy, "eval/acc", ["warmup"]) == pytest.approx(0.57, rel=1e-6)


# ---------------------------------------------------------------------------------------------------- divergence


def test_wilson_interval() -> None:
    low, high = stats.wilson_interval(5, 10)
    assert (low, high) == pytest.approx((0.2365931, 0.7634069), abs=1e-6)  # tabulated 95% Wilson interval
    low, high = stats.wilson_interval(0, 10)
    assert low == 0.0 and high == pytest.approx(Z95**2 / (10 + Z95**2))  # k = 0: not zero width
    assert stats.wilson_interval(10, 10) == pytest.approx((1 - high, 1.0))
    assert all(math.isnan(x) for x in stats.wilson_interval(0, 0))


def test_divergence_rate_per_cell() -> None:
    runs = runs_table({(0, 0): 1.0, (0, 1): 1.0, (0, 2): 1.0, (0, 3): 1.0, (100, 0): 1.0})
    runs.loc[[0, 1], "status"] = "diverged"
    runs.loc[2, "status"] = "failed"  # not a trial
    table = stats.divergence_rate(runs, ["warmup"])
    assert list(table["n_runs"]) == [3, 1] and list(table["n_diverged"]) == [2, 0]
    assert table["rate"].iloc[0] == pytest.approx(2 / 3)
    assert (table["rate_low"].iloc[0], table["rate_high"].iloc[0]) == pytest.approx(stats.wilson_interval(2, 3))
