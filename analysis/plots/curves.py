"""Metrics as matrices of runs x steps, and their summaries over seeds: what the curve figures draw.

``metric_curves`` (a metric of some runs over the steps any of them logged), ``seed_summary`` (median and band
over seeds), ``trailing_mean`` (train loss over a window), ``last_finite`` (where a diverged run stopped),
``loss_ceiling`` (the top of a loss axis that a diverging run does not set), ``use_log_scale``.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass
class Curves:
    """One metric of some runs as a matrix: ``values[i, j]`` is run ``i``'s value at ``steps[j]`` (NaN: none)."""

    steps: np.ndarray
    values: np.ndarray
    runs: pd.DataFrame

    def of(self, mask: np.ndarray | pd.Series) -> np.ndarray:
        """The rows of the runs selected by a boolean mask over ``runs``."""
        return self.values[np.asarray(mask, dtype=bool)]


def metric_curves(runs: pd.DataFrame, history: pd.DataFrame, metric: str, through_step: float | None = None) -> Curves:
    """``metric`` of every run in ``runs`` over the steps where some run logged a finite value of it.

    Non-finite values (a diverging run's infinite loss) count as not logged, so lines stop there.
    """
    if metric not in history:
        return Curves(np.array([], dtype=np.int64), np.empty((len(runs), 0)), runs)
    keys = pd.MultiIndex.from_arrays([runs["study"].astype(str), runs["run"].astype(str)])
    rows = keys.get_indexer(pd.MultiIndex.from_arrays([history["study"].astype(str), history["run"].astype(str)]))
    steps = history["step"].to_numpy()
    values = history[metric].to_numpy(dtype="float64", na_value=np.nan)
    keep = (rows >= 0) & np.isfinite(values)
    if through_step is not None:
        keep &= steps <= through_step
    kept_steps = np.unique(steps[keep])
    matrix = np.full((len(runs), len(kept_steps)), np.nan)
    matrix[rows[keep], np.searchsorted(kept_steps, steps[keep])] = values[keep]
    return Curves(kept_steps, matrix, runs)


def has_data(history: pd.DataFrame, metric: str) -> bool:
    """True when ``metric`` is a history column with at least one finite value."""
    return metric in history and bool(np.isfinite(history[metric].to_numpy(dtype="float64", na_value=np.nan)).any())


def trailing_mean(values: np.ndarray, window: int) -> np.ndarray:
    """Per row, the mean of the finite values among the last ``window`` columns up to each column.

    NaN where the row itself is NaN (a run that stopped stays stopped) or the window has no finite value.
    """
    finite = np.isfinite(values)
    sums = np.cumsum(np.where(finite, values, 0.0), axis=1)
    counts = np.cumsum(finite, axis=1)
    sums[:, window:] = sums[:, window:] - sums[:, :-window]
    counts[:, window:] = counts[:, window:] - counts[:, :-window]
    with np.errstate(invalid="ignore", divide="ignore"):
        means = sums / counts
    return np.where(finite & (counts > 0), means, np.nan)


def seed_summary(values: np.ndarray, band: str = "range") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Median, band low and band high over the rows (seeds) at each column; NaN where no seed has a value.

    ``band="range"``: min and max; ``band="iqr"``: 25th and 75th percentiles (linear interpolation).
    """
    quantiles = (0.0, 1.0) if band == "range" else (0.25, 0.75)
    if values.shape[1] == 0:
        empty = np.empty(0)
        return empty, empty, empty
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN column: a step no seed reached
        median = np.nanmedian(values, axis=0)
        low, high = np.nanquantile(values, quantiles, axis=0)
    return median, low, high


def last_finite(steps: np.ndarray, row: np.ndarray) -> tuple[float, float] | None:
    """The step and value of a row's last finite value, or None."""
    finite = np.flatnonzero(np.isfinite(row))
    return (float(steps[finite[-1]]), float(row[finite[-1]])) if len(finite) else None


def eval_interval(history: pd.DataFrame) -> int:
    """The most common distance between evaluation steps (``eval_every``), from ``eval/loss``; 1 if unknown."""
    if not has_data(history, "eval/loss"):
        return 1
    logged = history.loc[np.isfinite(history["eval/loss"].to_numpy(dtype="float64", na_value=np.nan))]
    gaps = logged.groupby(["study", "run"], observed=True)["step"].diff().dropna()
    gaps = gaps[gaps > 0]
    return int(gaps.mode().iloc[0]) if len(gaps) else 1


def use_log_scale(values: Iterable[np.ndarray], ratio: float = 4.0, positive_share: float = 1.0) -> bool:
    """True when at least ``positive_share`` of the finite values are positive and the largest positive one is
    over ``ratio`` times the smallest (a log axis leaves out the others: a rare negative eigenvalue)."""
    finite = [np.ravel(v)[np.isfinite(np.ravel(v))] for v in values]
    pooled = np.concatenate(finite) if finite else np.array([])
    positive = pooled[pooled > 0]
    if not len(positive) or len(positive) < positive_share * len(pooled):
        return False
    return bool(positive.max() > ratio * positive.min())


def loss_ceiling(held_out: list[np.ndarray], train: list[np.ndarray], margin: float = 1.3) -> float | None:
    """Top of the loss axis: ``margin`` times the largest held-out median or starting train loss, at most twice the
    largest starting loss, so that the explosion of a diverging run (10 times its first loss, or more, in the
    train loss and in the held-out loss evaluated on its way up) does not flatten every other curve."""
    starts = [v[np.isfinite(v)][0] for v in [*held_out, *train] if np.isfinite(v).any()]
    tops = [np.nanmax(v) for v in held_out if np.isfinite(v).any()]
    tops += [v[np.isfinite(v)][0] for v in train if np.isfinite(v).any()]
    if not tops:
        return None
    return float(min(margin * max(tops), 2 * max(starts)))
