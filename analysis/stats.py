"""Statistics over a study's tables (``analysis.load``): pure functions of DataFrames, every formula written down.

Vocabulary. A *cell* is one combination of factor values (the ``by`` columns, e.g. ``optimizer, warmup``); its
runs differ only in ``seed``, and the seeds are the replicates every interval is over. Only runs whose status is a
result count (``completed`` and ``diverged``, the default ``statuses``): a ``failed`` run is an error, not a
measurement. A missing or non-finite metric value (a diverged run's final loss) is left out of averages; ``n``
columns say how many values were used.

Intervals are 95% percentile bootstrap intervals (``scipy.stats.bootstrap(..., method="percentile")``): draw
``B = n_resamples`` (2000) resamples of the cell's values with replacement, compute the statistic on each, and take
the ``(1 - c) / 2`` and ``(1 + c) / 2`` quantiles (linear interpolation) of the B statistics, ``c = confidence``.
Every cell draws from its own ``numpy.random.default_rng(seed)``, so a cell's interval does not depend on which
other cells exist. Stratified (``strata="study"`` or ``"data"``, as rliable aggregates over tasks): each stratum
is resampled within itself, keeping its size, and the statistic is computed on the pooled resample (each stratum
is one of scipy's independent samples). With fewer than 2 values (in any stratum) the bootstrap cannot vary: the
interval is NaN, ``ci_available`` is False and ``ci_note`` says why; it is never reported as zero width.
Proportions get Wilson intervals (``scipy.stats.binomtest``), times to a target Kaplan-Meier curves
(``scipy.stats.ecdf`` on ``scipy.stats.CensoredData``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats

RESULT_STATUSES = ("completed", "diverged")
N_RESAMPLES = 2000
CONFIDENCE = 0.95
Statistic = Callable[[np.ndarray], np.ndarray]  # values (..., n) -> statistic over the last axis (...)


# ---------------------------------------------------------------------------------------------------- estimators


def mean(values: np.ndarray) -> np.ndarray:
    """Arithmetic mean over the last axis: ``sum(x) / n``."""
    return np.mean(values, axis=-1)


def median(values: np.ndarray) -> np.ndarray:
    """Median over the last axis (the mean of the two middle values when n is even)."""
    return np.median(values, axis=-1)


def iqm(values: np.ndarray) -> np.ndarray:
    """Interquartile mean over the last axis: the mean of the middle 50% of the sorted values.

    ``scipy.stats.trim_mean(x, 0.25)``: cut ``floor(0.25 n)`` values from each end, average the rest (rliable's
    IQM). Less sensitive to one bad seed than the mean, less wasteful than the median.
    """
    return np.asarray(scipy_stats.trim_mean(values, 0.25, axis=-1))


ESTIMATORS: dict[str, Statistic] = {"mean": mean, "median": median, "iqm": iqm}


def higher_is_better(metric: str) -> bool:
    """True for an accuracy (``eval/acc``, ``final_eval_acc``), False for a loss; an error for anything else."""
    name = metric.rsplit("/", 1)[-1]
    if name.endswith("acc"):
        return True
    if name.endswith("loss"):
        return False
    raise ValueError(f"cannot tell whether a higher {metric!r} is better: pass higher_is_better=True or False")


# ---------------------------------------------------------------------------------------------------- bootstrap


def bootstrap_interval(
    groups: Sequence[np.ndarray], statistic: Statistic, n_resamples: int, confidence: float, seed: int
) -> tuple[float, float]:
    """The percentile bootstrap interval of the statistic of the pooled groups, each group resampled within itself.

    ``scipy.stats.bootstrap`` with the groups as independent samples: per group of size ``n_g``, in order, it draws
    ``rng.integers(0, n_g, (n_resamples, n_g))`` from ``rng = numpy.random.default_rng(seed)``, pools the resampled
    groups, computes the statistic of each of the ``n_resamples`` pooled resamples and takes their
    ``(1 - c) / 2`` and ``(1 + c) / 2`` quantiles (linear interpolation). Every group needs at least 2 values.
    """

    def pooled(*resamples: np.ndarray, axis: int) -> np.ndarray:  # scipy passes (n_resamples, n_g) arrays, axis=-1
        return statistic(np.concatenate(resamples, axis=axis))

    result = scipy_stats.bootstrap(
        tuple(groups),
        pooled,
        n_resamples=n_resamples,
        vectorized=True,
        confidence_level=confidence,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def interval_note(groups: Sequence[np.ndarray]) -> str:
    """Why no interval can be computed from these groups of values, or "" when one can."""
    sizes = [len(group) for group in groups]
    if not sizes or sum(sizes) == 0:
        return "no values"
    if min(sizes) < 2:
        where = "" if len(sizes) == 1 else " in a stratum"
        return f"fewer than 2 seeds{where} ({min(sizes)}): no interval"
    return ""


def estimate_with_interval(
    groups: Sequence[np.ndarray],
    statistic: Statistic,
    n_resamples: int = N_RESAMPLES,
    confidence: float = CONFIDENCE,
    seed: int = 0,
) -> tuple[float, float, float]:
    """``(estimate, low, high)``: the statistic of the pooled values and its percentile bootstrap interval.

    ``low`` and ``high`` are NaN where ``interval_note(groups)`` says the interval is unavailable.
    """
    pooled = np.concatenate(groups) if groups else np.array([])
    estimate = float(statistic(pooled)) if len(pooled) else math.nan
    if interval_note(groups):
        return estimate, math.nan, math.nan
    return estimate, *bootstrap_interval(groups, statistic, n_resamples, confidence, seed)


# ---------------------------------------------------------------------------------------------------- tables


def cells(table: pd.DataFrame, by: Sequence[str]) -> Iterator[tuple[dict[str, Any], pd.DataFrame]]:
    """``({factor: value}, rows)`` for every cell of ``by`` (one cell, the whole table, when ``by`` is empty).

    A missing factor value (NaN) is a value of its own, not a reason to drop the rows.
    """
    if not by:
        yield {}, table
        return
    for key, rows in table.groupby(list(by), dropna=False, sort=True, observed=True):
        yield dict(zip(by, key, strict=True)), rows


def results_only(runs: pd.DataFrame, statuses: Sequence[str]) -> pd.DataFrame:
    """The runs whose status is one of ``statuses``."""
    return runs[runs["status"].isin(list(statuses))]


def finite_groups(rows: pd.DataFrame, column: str, strata: str | None) -> list[np.ndarray]:
    """The finite values of ``column``, one float64 array per stratum (a single array without strata)."""
    if strata is None:
        parts = [rows[column]]
    else:
        parts = [part[column] for _, part in rows.groupby(strata, dropna=False, sort=True, observed=True)]
    arrays = [part.to_numpy(dtype="float64", na_value=np.nan) for part in parts]
    return [array[np.isfinite(array)] for array in arrays]


def aggregate(
    runs: pd.DataFrame,
    metric: str,
    by: Sequence[str],
    *,
    strata: str | None = None,
    statuses: Sequence[str] = RESULT_STATUSES,
    n_resamples: int = N_RESAMPLES,
    confidence: float = CONFIDENCE,
    seed: int = 0,
) -> pd.DataFrame:
    """Per cell of ``by``, over seeds: mean, median and IQM of ``metric``, each with a bootstrap interval.

    Columns: the ``by`` factors, ``n_runs`` (runs with a result), ``n`` (finite values used), ``mean``,
    ``mean_low``, ``mean_high``, ``median``, ``median_low``, ``median_high``, ``iqm``, ``iqm_low``, ``iqm_high``,
    ``ci_available`` (bool) and ``ci_note`` ("" or why not). ``strata`` names a column to stratify the bootstrap by.
    """
    rows = []
    for key, cell in cells(results_only(runs, statuses), by):
        groups = finite_groups(cell, metric, strata)
        row: dict[str, Any] = {**key, "n_runs": len(cell), "n": sum(len(group) for group in groups)}
        for name, statistic in ESTIMATORS.items():
            estimate, low, high = estimate_with_interval(groups, statistic, n_resamples, confidence, seed)
            row.update({name: estimate, f"{name}_low": low, f"{name}_high": high})
        note = interval_note(groups)
        row.update(ci_available=not note, ci_note=note)
        rows.append(row)
    columns = [*by, "n_runs", "n", *(f"{n}{s}" for n in ESTIMATORS for s in ("", "_low", "_high"))]
    return pd.DataFrame(rows, columns=[*columns, "ci_available", "ci_note"])


# ---------------------------------------------------------------------------------------------------- pairs


def parse_control(control: str | tuple[str, Any]) -> tuple[str, Any]:
    """``"warmup=0"`` -> ``("warmup", "0")``; a ``(factor, value)`` pair is returned as it is."""
    if isinstance(control, tuple):
        return control
    factor, sign, value = control.partition("=")
    if not sign or not factor:
        raise ValueError(f"control {control!r} is not factor=value: write it like 'warmup=0' or 'skew=none'")
    return factor.strip(), value.strip()


def equals_value(column: pd.Series, value: Any) -> pd.Series:
    """Rows whose value is ``value``; a text value such as ``"0"`` is compared as a number in a number column."""
    if isinstance(value, str) and pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
        try:
            return column == float(value)
        except ValueError:
            return pd.Series(False, index=column.index)
    if isinstance(value, str):
        return column.astype("str") == value
    return column == value


def control_rows(runs: pd.DataFrame, factor: str, value: Any) -> pd.Series:
    """The mask of the control runs; an error naming the available values when there are none."""
    if factor not in runs.columns:
        raise ValueError(f"control factor {factor!r} is not a column of the runs table; factors include {list(runs)}")
    mask = equals_value(runs[factor], value)
    if not mask.any():
        available = ", ".join(sorted({str(v) for v in runs[factor].unique()}))
        raise ValueError(f"no control runs with {factor}={value}: {factor} takes {available}; choose one of these")
    return mask


def improvement_scores(treatment: np.ndarray, control: np.ndarray, higher_better: bool) -> np.ndarray:
    """Per pair: 1 if the treatment is better than its control, 1/2 for a tie, 0 if worse."""
    better = treatment > control if higher_better else treatment < control
    return better + 0.5 * (treatment == control)


def paired_effects(
    runs: pd.DataFrame,
    metric: str,
    by: Sequence[str],
    control: str | tuple[str, Any] = "warmup=0",
    *,
    higher_better: bool | None = None,
    pair_on: Sequence[str] = ("seed",),
    strata: str | None = None,
    statuses: Sequence[str] = RESULT_STATUSES,
    n_resamples: int = N_RESAMPLES,
    confidence: float = CONFIDENCE,
    seed: int = 0,
) -> pd.DataFrame:
    """The effect of each treatment cell against its control, paired seed by seed.

    The control of a run is the run with the control's value of the control factor (``warmup=0`` by default, or
    e.g. ``skew=none``) and the same value of every other ``by`` factor and of every ``pair_on`` column (the seed).
    For the pairs ``i = 1..n`` of a cell, ``d_i = x_i - y_i`` (treatment minus control, in the metric's units):

    - ``mean_diff = sum(d_i) / n``, with a percentile bootstrap interval over pairs;
    - ``p_improvement = sum(s_i) / n``, ``s_i = 1`` if the treatment is better (lower loss, higher accuracy;
      ``higher_better`` defaults to ``higher_is_better(metric)``), 1/2 on a tie, else 0: the probability that a
      seed improves, P(X < Y) for a loss, estimated over the pairs, with its bootstrap interval.

    Columns: the ``by`` factors (the control factor holds the treatment's value), ``control`` (``factor=value``),
    ``n_pairs`` (pairs with both values finite), ``n_unpaired`` (treatment runs without such a pair),
    ``mean_diff``, ``mean_diff_low``, ``mean_diff_high``, ``p_improvement``, ``p_improvement_low``,
    ``p_improvement_high``, ``ci_available``, ``ci_note``. Raises ValueError when the control does not exist or
    is not unique for a pair key (add the factor that tells the runs apart to ``by``).
    """
    factor, value = parse_control(control)
    higher_better = higher_is_better(metric) if higher_better is None else higher_better
    by = list(by) if factor in by else [*by, factor]
    keys = [column for column in [*by, *pair_on] if column != factor]
    usable = results_only(runs, statuses)
    is_control = control_rows(usable, factor, value)
    controls = usable.loc[is_control, [*keys, metric]]
    repeated = controls.duplicated(subset=keys, keep=False)
    if repeated.any():
        example = controls.loc[repeated, keys].iloc[0].to_dict()
        raise ValueError(
            f"control {factor}={value} is not unique for {example}: add the factor that tells these runs apart "
            f"(e.g. study) to by"
        )
    pairs = usable.loc[~is_control].merge(controls, on=keys, how="left", suffixes=("", "_control"))
    rows = []
    for key, cell in cells(pairs, by):
        treatment = cell[metric].to_numpy(dtype="float64", na_value=np.nan)
        baseline = cell[f"{metric}_control"].to_numpy(dtype="float64", na_value=np.nan)
        paired = np.isfinite(treatment) & np.isfinite(baseline)
        scores = improvement_scores(treatment[paired], baseline[paired], higher_better)
        measured = pd.DataFrame({"difference": treatment[paired] - baseline[paired], "score": scores})
        if strata is not None:
            measured[strata] = cell[strata].to_numpy()[paired]
        diff_groups = finite_groups(measured, "difference", strata)
        score_groups = finite_groups(measured, "score", strata)
        # Same seed and same group sizes: both bootstraps draw the same pairs, so (d_i, s_i) are resampled together.
        mean_diff, diff_low, diff_high = estimate_with_interval(diff_groups, mean, n_resamples, confidence, seed)
        p, p_low, p_high = estimate_with_interval(score_groups, mean, n_resamples, confidence, seed)
        note = interval_note(diff_groups)
        rows.append(
            {
                **key,
                "control": f"{factor}={value}",
                "n_pairs": int(paired.sum()),
                "n_unpaired": int((~paired).sum()),
                "mean_diff": mean_diff,
                "mean_diff_low": diff_low,
                "mean_diff_high": diff_high,
                "p_improvement": p,
                "p_improvement_low": p_low,
                "p_improvement_high": p_high,
                "ci_available": not note,
                "ci_note": note,
            }
        )
    columns = [*by, "control", "n_pairs", "n_unpaired", "mean_diff", "mean_diff_low", "mean_diff_high"]
    columns += ["p_improvement", "p_improvement_low", "p_improvement_high", "ci_available", "ci_note"]
    return pd.DataFrame(rows, columns=columns)


# ---------------------------------------------------------------------------------------------------- time to target


def final_values(history: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Each run's last finite value of ``metric`` in the history: columns ``study``, ``run``, ``step``, ``value``."""
    logged = history.loc[np.isfinite(history[metric]), ["study", "run", "step", metric]]
    last = logged.groupby(["study", "run"], observed=True, sort=False).tail(1)
    return last.rename(columns={metric: "value"}).reset_index(drop=True)


def default_target(
    runs: pd.DataFrame,
    history: pd.DataFrame,
    metric: str,
    by: Sequence[str],
    *,
    margin: float = 0.05,
    higher_better: bool | None = None,
) -> float:
    """The default target of ``time_to_target``: what the best cell reliably reaches, loosened by ``margin``.

    ``m_c`` = the median over the completed runs of cell ``c`` of their final value of ``metric``; the best cell's
    ``m* = min_c m_c`` for a loss (``max_c`` for an accuracy); target ``= m* + margin * |m*|`` for a loss and
    ``m* - margin * |m*|`` for an accuracy (5%: a loss of 0.40 gives 0.42, an accuracy of 0.90 gives 0.855).
    The median keeps one lucky seed from setting the bar; the margin lets the best cell's typical run reach the
    target before its last step, so time-to-target measures speed rather than where runs end. Every cell is timed
    against the same target.
    """
    higher_better = higher_is_better(metric) if higher_better is None else higher_better
    finals = final_values(history, metric).astype({"study": "str", "run": "str"})
    completed = runs.loc[runs["status"] == "completed", ["study", "run", *by]]
    table = completed.merge(finals, on=["study", "run"])
    if table.empty:
        raise ValueError(f"no completed run logged a finite {metric!r}: no default target; pass target=")
    medians = [float(np.median(cell["value"])) for _, cell in cells(table, by)]
    best = max(medians) if higher_better else min(medians)
    return best - margin * abs(best) if higher_better else best + margin * abs(best)


def time_to_target(
    runs: pd.DataFrame,
    history: pd.DataFrame,
    metric: str,
    target: float,
    by: Sequence[str] = (),
    *,
    higher_better: bool | None = None,
    statuses: Sequence[str] = RESULT_STATUSES,
) -> pd.DataFrame:
    """Per run, the first step at which ``metric`` reaches ``target``, or the step it is censored at.

    Reached: ``value <= target`` for a loss, ``>= target`` for an accuracy (``higher_better``). A run that never
    reaches it (or diverges first) is right-censored at its last step with a finite value of ``metric`` (step 0
    when there is none): we know only that it had not reached the target by then. Columns: ``study``, ``run``,
    the ``by`` factors, ``status``, ``step`` (int) and ``reached`` (bool).
    """
    higher_better = higher_is_better(metric) if higher_better is None else higher_better
    usable = results_only(runs, statuses)[["study", "run", *by, "status"]]
    logged = history.loc[np.isfinite(history[metric]), ["study", "run", "step", metric]]
    logged = logged.astype({"study": "str", "run": "str"})
    hits = logged[logged[metric] >= target] if higher_better else logged[logged[metric] <= target]
    first_hit = hits.groupby(["study", "run"], sort=False)["step"].min().rename("hit_step")
    last_step = logged.groupby(["study", "run"], sort=False)["step"].max().rename("last_step")
    table = usable.join(first_hit, on=["study", "run"]).join(last_step, on=["study", "run"])
    table["reached"] = table["hit_step"].notna()
    table["step"] = table["hit_step"].fillna(table["last_step"]).fillna(0).astype("int64")
    return table[["study", "run", *by, "status", "step", "reached"]].reset_index(drop=True)


def kaplan_meier_curve(times: pd.DataFrame) -> pd.DataFrame:
    """The Kaplan-Meier curve of one cell's ``time_to_target`` rows (see ``kaplan_meier``).

    ``S(t)`` is ``scipy.stats.ecdf(CensoredData(uncensored=reached steps, right=censored steps)).sf``, which is
    evaluated at every distinct step; the counts beside it are counted here.
    """
    columns = ["step", "n_at_risk", "n_reached", "n_censored", "fraction_reached"]
    if times.empty:
        return pd.DataFrame(columns=columns)
    steps = times["step"].to_numpy(dtype="float64")
    reached = times["reached"].to_numpy(dtype="bool")
    not_reached = scipy_stats.ecdf(scipy_stats.CensoredData(uncensored=steps[reached], right=steps[~reached])).sf
    counts = times.groupby("step", sort=True)["reached"].agg(n_runs="size", n_reached="sum")
    curve = pd.DataFrame(
        {
            "step": counts.index.to_numpy(dtype="int64"),
            "n_at_risk": counts["n_runs"].to_numpy()[::-1].cumsum()[::-1],  # runs with step >= t
            "n_reached": counts["n_reached"].to_numpy(dtype="int64"),
            "n_censored": (counts["n_runs"] - counts["n_reached"]).to_numpy(dtype="int64"),
            "fraction_reached": 1 - not_reached.evaluate(counts.index.to_numpy(dtype="float64")),
        }
    )
    return curve[columns]


def kaplan_meier(times: pd.DataFrame, by: Sequence[str] = ()) -> pd.DataFrame:
    """Per cell, the Kaplan-Meier fraction of runs that reached the target by each step.

    From ``time_to_target``'s table. At each distinct step ``t_i`` with ``n_i`` runs still at risk (step >= t_i)
    and ``d_i`` of them reaching the target there, the fraction not yet reached is
    ``S(t) = prod_{t_i <= t} (1 - d_i / n_i)`` and ``fraction_reached = 1 - S(t)``. A censored run counts as at
    risk at its own step and leaves afterwards. Columns: the ``by`` factors, ``step``, ``n_at_risk``,
    ``n_reached``, ``n_censored``, ``fraction_reached``; one row per distinct step of the cell.
    """
    columns = [*by, "step", "n_at_risk", "n_reached", "n_censored", "fraction_reached"]
    curves = [kaplan_meier_curve(cell).assign(**key) for key, cell in cells(times, by)]
    if not curves:
        return pd.DataFrame(columns=columns)
    return pd.concat(curves, ignore_index=True)[columns]


def median_time_to_target(times: pd.DataFrame, by: Sequence[str] = ()) -> pd.DataFrame:
    """Per cell, the Kaplan-Meier median time-to-target: the first step where ``fraction_reached >= 1/2``.

    (Compared with a tolerance of 1e-12: the product of the factors can land a rounding error below 1/2.) NaN,
    with ``note`` "not reached", when the curve never gets to 1/2: fewer than half the runs are known to reach
    the target. Columns: the ``by`` factors, ``n_runs``, ``n_reached``, ``median_step``, ``note``.
    """
    rows = []
    for key, cell in cells(times, by):
        curve = kaplan_meier_curve(cell)
        passed = curve.loc[curve["fraction_reached"] >= 0.5 - 1e-12, "step"]
        median_step = float(passed.iloc[0]) if len(passed) else math.nan
        row = {**key, "n_runs": len(cell), "n_reached": int(cell["reached"].sum()), "median_step": median_step}
        row["note"] = "" if len(passed) else "not reached"
        rows.append(row)
    return pd.DataFrame(rows, columns=[*by, "n_runs", "n_reached", "median_step", "note"])


# ---------------------------------------------------------------------------------------------------- divergence


def wilson_interval(successes: int, trials: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Wilson score interval of a proportion ``p = k / n``, with ``z`` the normal quantile of ``(1 + c) / 2``:

    ``(p + z^2 / 2n -+ z sqrt(p (1 - p) / n + z^2 / 4n^2)) / (1 + z^2 / n)``, without continuity correction
    (``scipy.stats.binomtest(k, n).proportion_ci(c, method="wilson")``; exactly 0 at ``k = 0`` and 1 at ``k = n``).
    Unlike ``p -+ z sqrt(p(1-p)/n)`` it stays inside [0, 1] and is not zero width at ``k = 0`` or ``k = n``.
    NaN for ``n = 0``.
    """
    if trials == 0:
        return math.nan, math.nan
    interval = scipy_stats.binomtest(successes, trials).proportion_ci(confidence, method="wilson")
    return float(interval.low), float(interval.high)


def divergence_rate(
    runs: pd.DataFrame, by: Sequence[str], *, statuses: Sequence[str] = RESULT_STATUSES, confidence: float = CONFIDENCE
) -> pd.DataFrame:
    """Per cell, the share of runs that diverged, ``n_diverged / n_runs``, with its Wilson interval.

    Counted over the runs with a result (failed and running runs are not trials). Columns: the ``by`` factors,
    ``n_runs``, ``n_diverged``, ``rate``, ``rate_low``, ``rate_high``.
    """
    rows = []
    for key, cell in cells(results_only(runs, statuses), by):
        n_runs, n_diverged = len(cell), int((cell["status"] == "diverged").sum())
        low, high = wilson_interval(n_diverged, n_runs, confidence)
        rate = n_diverged / n_runs if n_runs else math.nan
        row = {**key, "n_runs": n_runs, "n_diverged": n_diverged}
        rows.append({**row, "rate": rate, "rate_low": low, "rate_high": high})
    return pd.DataFrame(rows, columns=[*by, "n_runs", "n_diverged", "rate", "rate_low", "rate_high"])
