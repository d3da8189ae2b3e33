"""The regime finder: the largest learning rate each warmup length trains at, and how sensitive the loss is to lr.

``python -m analysis.regime <study dir> [--lr-col lr] [--out DIR]`` reads a study that crosses a learning-rate
grid with warmup lengths and seeds; ``python -m analysis.regime find --study NAME --lr-min A --lr-max B ...`` first
runs such a study (``python -m ablate -m ...``), then reads it. Pure pandas/numpy/scipy: no torch, no training code.

Vocabulary. A *setup* is one combination of the other factors (``by``: optimizer, model, skew, ...); within it
the runs cross the lr grid, the warmup lengths ``W`` (column ``warmup``) and the seeds ``s``. The *grid* of a setup
is the sorted set of lr values of its runs (all W, all seeds). A run's *outcome* is ``trained``, ``untrained`` or
``diverged`` (``result.json`` summary, see ``ablate.run.outcome``); a ``failed`` or ``running`` run, or a grid point
without a run, has *no result*.

Rules (formulas):

* **stable lr** ``lr*_s(W)``: the largest grid rate ``lr_k`` such that seed ``s``'s runs at warmup ``W`` are
  ``trained`` at ``lr_k`` *and at every smaller grid rate* ``lr_0 .. lr_k``: the contiguous stable range from the
  bottom of the grid. A rate above the first failure that trains again (a non-contiguous island) does not count; the
  note says so. Not trained at the smallest rate: NaN, with a note. Stopped by a grid point without a result, or
  trained up to the top of the grid: *censored*, the true value is at least ``lr*`` (note "at least").
  The all-seeds value ``lr*(W)``: the largest ``lr_k`` at which *every* seed is trained at ``lr_0 .. lr_k``
  (``= min_s lr*_s(W)``); censored when no seed shows a failure at the next grid rate.
* **ratio** to no warmup, per setup and ``W > 0``, paired by seed: ``r_s = lr*_s(W) / lr*_s(0)``; reported as the
  geometric mean ``exp(mean_s log r_s)`` with a 95% percentile bootstrap interval over seeds (``analysis.stats``'
  conventions: ``B = 2000`` resamples of the log ratios from ``default_rng(0)``, NaN interval with a note for fewer
  than 2 seeds; the interval of the mean log, exponentiated, is the interval of the geometric mean). Seeds without
  both values are left out (``n`` counts the pairs). ``censored``: some ``r_s`` uses a censored value (the
  warmup's: ``r_s`` is at least; no warmup's: at most). The ratio is quantised to the grid: a finer grid, not more
  seeds, resolves a small effect.
* **grid check**: ``max_k lr_{k+1} / lr_k``; coarser than ``sqrt 2`` (beyond a 1e-3 rounding tolerance) gives a
  one-line warning: a twofold change of ``lr*`` could then fall between two grid points.
* **LR sensitivity** (Wortsman et al. 2023, "Small-scale proxies for large-scale Transformer training
  instabilities", sec. 3.1): per setup, ``W`` and seed,
  ``S = E_{lr ~ log-uniform[lr_0, lr_n]} [min(L(lr), L_init) - min_lr L(lr)]``, with ``L`` the final held-out loss
  (``final_eval_loss``). A non-finite or missing loss, a ``diverged`` outcome and a grid point without a result
  all count as ``L_init`` (the cap). ``L_init`` is the loss at initialisation: the median over the seed's runs in
  the lr sweep of ``first_train_loss`` (the first batch's loss before any update: the same initial weights and first
  batch at every lr, so the runs agree up to rounding). It is a training-batch loss, not a held-out one: the
  run record keeps no held-out loss at step 0 in its summary. ``min_lr L(lr)`` is the best capped loss over the
  grid *for the same W and seed* (Wortsman's best over the sweep of one configuration: per W, not across W). The
  expectation over a log-uniform lr is the trapezoid average over ``x_k = log lr_k`` of the grid points,
  ``S = sum_k (x_{k+1} - x_k) (f_k + f_{k+1}) / 2 / (x_n - x_0)`` with ``f_k = min(L(lr_k), L_init) - min``;
  on an even log grid, ``(f_0 / 2 + f_1 + ... + f_{n-1} + f_n / 2) / n``; 0 with a single rate. Reported as the
  mean over seeds with the same bootstrap interval as the ratio. 0 means every rate trains to the best loss; the
  most it can be is ``L_init - min``.

Outcome when a record has none (written before outcomes existed): ``diverged`` for status ``diverged``; for
``completed``, ``trained`` when ``final_eval_loss < chance_loss`` (margin 0, where ``chance_loss`` is recorded),
else ``trained`` with a warning that completed runs were taken as trained.
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analysis import stats
from analysis.load import STANDARD_FACTORS, StudyError, load_study

REPO = Path(__file__).resolve().parent.parent
TRAINED, UNTRAINED, DIVERGED = "trained", "untrained", "diverged"
OUTCOMES = (TRAINED, UNTRAINED, DIVERGED)
LOSS = "final_eval_loss"
INIT_LOSS = "first_train_loss"
MAX_GRID_RATIO = math.sqrt(2.0)
GRID_TOLERANCE = 1e-3  # relative: grid values written with 6 significant digits stay within it
# Columns that never define a setup: the lr axis (either spelling), the warmup axis and the replicate.
FIXED_NAMES = ("optimizer", "model", "data", "skew")  # named in titles when they do not vary
NOT_SETUP = ("lr", "lr_scale", "warmup", "warmup_steps", "seed")


class UsageError(ValueError):
    """Bad input: printed as one line, exit status 2."""


# ---------------------------------------------------------------------------------------------------- inputs


def setup_factors(runs: pd.DataFrame, lr_col: str = "lr", warmup_col: str = "warmup") -> list[str]:
    """The varying factors that define a setup: every varying standard or dotted factor but the lr, warmup, seed."""
    dotted = [c for c in runs.columns if "." in c]
    candidates = [c for c in [*STANDARD_FACTORS, *dotted] if c in runs.columns]
    skip = {*NOT_SETUP, lr_col, warmup_col}
    return [c for c in candidates if c not in skip and runs[c].nunique(dropna=False) > 1]


def outcomes(runs: pd.DataFrame) -> pd.Series:
    """Each run's outcome (``trained``, ``untrained``, ``diverged``), or None for a run without a result.

    From the ``outcome`` column; for a record without one, the fallback of the module docstring.
    """
    status = runs["status"].astype("str")
    has_result = status.isin(list(stats.RESULT_STATUSES))
    given = runs["outcome"] if "outcome" in runs.columns else pd.Series(None, index=runs.index, dtype="object")
    given = given.where(given.isin(list(OUTCOMES)), None).astype("object")
    lacking = has_result & given.isna()
    if lacking.any():
        loss = pd.to_numeric(runs.get(LOSS, pd.Series(np.nan, index=runs.index)), errors="coerce")
        chance = pd.to_numeric(runs.get("chance_loss", pd.Series(np.nan, index=runs.index)), errors="coerce")
        fallback = pd.Series(TRAINED, index=runs.index, dtype="object")
        fallback[(chance.notna() & ~(loss < chance))] = UNTRAINED
        fallback[status == "diverged"] = DIVERGED
        fallback[~np.isfinite(loss.to_numpy(dtype="float64", na_value=np.nan))] = DIVERGED
        if (lacking & chance.isna() & (status == "completed")).any():
            warnings.warn(
                f"{int(lacking.sum())} runs record no outcome and no chance_loss: completed runs taken as trained",
                stacklevel=2,
            )
        given = given.where(~lacking, fallback)
    return given.where(has_result, None)


def check_columns(runs: pd.DataFrame, lr_col: str, warmup_col: str) -> None:
    """A UsageError naming what is missing when the table cannot give a regime (no lr grid, no warmup, no seed)."""
    for column, what in ((lr_col, "learning rate"), (warmup_col, "warmup length"), ("seed", "seed")):
        if column not in runs.columns or runs[column].isna().all():
            raise UsageError(f"--lr-col/columns: no {what} column {column!r} in the runs table")
    values = pd.to_numeric(runs[lr_col], errors="coerce")
    if values.isna().any() or (values <= 0).any():
        raise UsageError(f"--lr-col {lr_col}: every run needs a positive number there (lr, lr_scale, ...)")


def fmt(value: float) -> str:
    """A rate or ratio in 4 significant digits: ``0.001``, ``0.0141``, ``2.83``; ``nan`` stays ``nan``."""
    return "nan" if value is None or not math.isfinite(value) else f"{value:.4g}"


def setup_cells(
    runs: pd.DataFrame, by: Sequence[str], lr_col: str
) -> list[tuple[dict[str, Any], pd.DataFrame, list[float]]]:
    """``(key, runs, grid)`` per setup: its runs (with an ``_outcome`` column) and its sorted lr grid."""
    table = runs.copy()
    table["_outcome"] = outcomes(runs)
    table["_lr"] = pd.to_numeric(table[lr_col], errors="coerce").astype("float64")
    found = []
    for key, cell in stats.cells(table, list(by)):
        grid = sorted(float(v) for v in cell["_lr"].unique())
        found.append((key, cell, grid))
    return found


def sorted_values(values: pd.Series) -> list[Any]:
    """Distinct values, numbers in numeric order."""
    return sorted(values.dropna().unique().tolist(), key=lambda v: (0, float(v)) if is_number(v) else (1, str(v)))


def is_number(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


# ---------------------------------------------------------------------------------------------------- stable lr


@dataclass
class StableLR:
    """``stable_lr``'s result: per seed and over all seeds, per setup and warmup (columns in ``stable_lr``)."""

    per_seed: pd.DataFrame
    all_seeds: pd.DataFrame
    grids: dict[tuple[Any, ...], list[float]]
    by: list[str]
    lr_col: str
    warmup_col: str
    fixed: dict[str, Any]  # the named setup factors that do not vary (optimizer, model, data, skew): for titles


def outcome_at(rows: pd.DataFrame, grid: Sequence[float]) -> list[str | None]:
    """The outcome at each grid rate of one seed's runs at one warmup (None: no result; the best of duplicates)."""
    rank = {TRAINED: 0, UNTRAINED: 1, DIVERGED: 2}
    found: list[str | None] = []
    for lr in grid:
        here = [o for o in rows.loc[rows["_lr"] == lr, "_outcome"] if o in rank]
        found.append(min(here, key=rank.__getitem__) if here else None)
    return found


def walk_up(trained: Sequence[bool | None], grid: Sequence[float]) -> tuple[float, bool, str]:
    """``(lr*, censored, note)`` from ``trained[k]`` (True, False, or None for no result) along the grid."""
    top = len(grid) - 1
    k = -1
    while k < top and trained[k + 1]:
        k += 1
    islands = [grid[j] for j in range(k + 2, len(grid)) if trained[j]]
    island_note = f"; trained again at {', '.join(fmt(v) for v in islands)} (not contiguous)" if islands else ""
    if k == -1:
        if trained[0] is None:
            return math.nan, True, f"no result at the smallest lr {fmt(grid[0])}" + island_note
        return math.nan, False, f"not trained at the smallest lr {fmt(grid[0])}" + island_note
    if k == top:
        return grid[k], True, f"trained up to the top of the grid: at least {fmt(grid[k])}"
    if trained[k + 1] is None:
        return grid[k], True, f"no result at lr {fmt(grid[k + 1])}: at least {fmt(grid[k])}" + island_note
    return grid[k], False, island_note.lstrip("; ")


def stable_lr(
    runs: pd.DataFrame, lr_col: str = "lr", by: Sequence[str] | None = None, warmup_col: str = "warmup"
) -> StableLR:
    """The stable learning rate ``lr*`` per setup, warmup and seed, and over all seeds (module docstring).

    ``by``: the setup factors (default ``setup_factors``). ``per_seed`` columns: the ``by`` factors, ``warmup``,
    ``seed``, ``lr_star``, ``censored``, ``note``; ``all_seeds``: the ``by`` factors, ``warmup``, ``n_seeds``,
    ``lr_star``, ``censored``, ``seed_min``, ``seed_max`` (range of the per-seed values), ``grid_top``, ``note``.
    """
    check_columns(runs, lr_col, warmup_col)
    by = setup_factors(runs, lr_col, warmup_col) if by is None else list(by)
    per_seed, all_seeds, grids = [], [], {}
    for key, cell, grid in setup_cells(runs, by, lr_col):
        grids[tuple(key.values())] = grid
        for warmup in sorted_values(cell[warmup_col]):
            at_w = cell[cell[warmup_col] == warmup]
            seeds = sorted_values(at_w["seed"])
            trained_by_seed = {}
            for seed in seeds:
                found = outcome_at(at_w[at_w["seed"] == seed], grid)
                trained = [None if o is None else o == TRAINED for o in found]
                trained_by_seed[seed] = trained
                lr_star, censored, note = walk_up(trained, grid)
                per_seed.append(
                    {**key, warmup_col: warmup, "seed": seed, "lr_star": lr_star, "censored": censored, "note": note}
                )
            everyone = [all_trained(trained_by_seed, k) for k in range(len(grid))]
            lr_star, censored, note = walk_up(everyone, grid)
            values = [r["lr_star"] for r in per_seed[len(per_seed) - len(seeds) :]]
            all_seeds.append(
                {
                    **key,
                    warmup_col: warmup,
                    "n_seeds": len(seeds),
                    "lr_star": lr_star,
                    "censored": censored,
                    "seed_min": float(np.min(values)) if values else math.nan,
                    "seed_max": float(np.max(values)) if values else math.nan,
                    "grid_top": grid[-1],
                    "note": note,
                }
            )
    seed_columns = [*by, warmup_col, "seed", "lr_star", "censored", "note"]
    all_columns = [*by, warmup_col, "n_seeds", "lr_star", "censored", "seed_min", "seed_max", "grid_top", "note"]
    return StableLR(
        pd.DataFrame(per_seed, columns=seed_columns),
        pd.DataFrame(all_seeds, columns=all_columns),
        grids,
        by,
        lr_col,
        warmup_col,
        {f: runs[f].dropna().iloc[0] for f in FIXED_NAMES if f in runs and runs[f].dropna().nunique() == 1},
    )


def all_trained(trained_by_seed: dict[Any, list[bool | None]], k: int) -> bool | None:
    """Every seed trained at grid point ``k`` (True), some seed failed there (False), else unknown (None)."""
    values = [trained[k] for trained in trained_by_seed.values()]
    if any(v is False for v in values):
        return False
    return None if any(v is None for v in values) else True


# ---------------------------------------------------------------------------------------------------- over seeds


@dataclass(frozen=True)
class SeedBootstrap:
    """The interval over seeds of the ratio and the sensitivity (module docstring; ``analysis.stats``' conventions):
    a percentile bootstrap of ``n_resamples`` resamples from ``default_rng(seed)``, ``confidence`` coverage."""

    n_resamples: int = stats.N_RESAMPLES
    confidence: float = stats.CONFIDENCE
    seed: int = 0

    def mean(self, values: np.ndarray) -> tuple[float, float, float, str]:
        """``(mean, low, high, note)`` of one value per seed: ``sum_s v_s / n`` and its interval; ``note`` says why
        there is none (fewer than 2 seeds: ``low``, ``high`` NaN), else ``""``."""
        settings = (self.n_resamples, self.confidence, self.seed)
        estimate, low, high = stats.estimate_with_interval([values], stats.mean, *settings)
        return estimate, low, high, stats.interval_note([values])


SEED_BOOTSTRAP = SeedBootstrap()


# ---------------------------------------------------------------------------------------------------- ratio


def stable_lr_ratio(
    runs: pd.DataFrame | StableLR,
    lr_col: str = "lr",
    by: Sequence[str] | None = None,
    warmup_col: str = "warmup",
    *,
    bootstrap: SeedBootstrap = SEED_BOOTSTRAP,
) -> pd.DataFrame:
    """Per setup and ``W > 0``: the geometric mean over seeds of ``lr*_s(W) / lr*_s(0)`` with its interval.

    ``ratio = exp(mean_s log r_s)`` and its interval: ``bootstrap.mean`` of the log ratios, exponentiated. Accepts
    the runs table or a ``StableLR``. Columns: the ``by`` factors, ``warmup``, ``n`` (seeds with both values),
    ``ratio`` (geometric mean), ``ratio_low``, ``ratio_high``, ``all_seeds_ratio`` (``lr*(W) / lr*(0)`` of the
    all-seeds values), ``censored``, ``ci_note``, ``note``. Empty when no setup has ``W = 0``.
    """
    found = runs if isinstance(runs, StableLR) else stable_lr(runs, lr_col, by, warmup_col)
    by, warmup_col = found.by, found.warmup_col
    rows = []
    per_seed, all_seeds = found.per_seed, found.all_seeds
    for key, cell in stats.cells(per_seed, by):
        zero = cell[pd.to_numeric(cell[warmup_col], errors="coerce") == 0].set_index("seed")
        if zero.empty:
            continue
        overall = next(rows_ for k, rows_ in stats.cells(all_seeds, by) if k == key)
        base_all = overall[pd.to_numeric(overall[warmup_col], errors="coerce") == 0]["lr_star"].iloc[0]
        for warmup in sorted_values(cell[warmup_col]):
            if not is_number(warmup) or float(warmup) == 0:
                continue
            at_w = cell[cell[warmup_col] == warmup].set_index("seed")
            seeds = [s for s in at_w.index if s in zero.index]
            pairs = [
                (at_w.at[s, "lr_star"], zero.at[s, "lr_star"], at_w.at[s, "censored"], zero.at[s, "censored"])
                for s in seeds
            ]
            usable = [p for p in pairs if math.isfinite(p[0]) and math.isfinite(p[1])]
            logs = np.array([math.log(a / b) for a, b, _, _ in usable])
            estimate, low, high, ci_note = bootstrap.mean(logs)
            notes = []
            if len(usable) < len(at_w):
                notes.append(f"{len(at_w) - len(usable)} of {len(at_w)} seeds without both values left out")
            if any(c for _, _, c, _ in usable):
                notes.append("warmup's lr* censored: at least")
            if any(c for _, _, _, c in usable):
                notes.append("no warmup's lr* censored: at most")
            w_all = overall[overall[warmup_col] == warmup]["lr_star"].iloc[0]
            rows.append(
                {
                    **key,
                    warmup_col: warmup,
                    "n": len(usable),
                    "ratio": math.exp(estimate) if len(usable) else math.nan,
                    "ratio_low": math.exp(low) if math.isfinite(low) else math.nan,
                    "ratio_high": math.exp(high) if math.isfinite(high) else math.nan,
                    "all_seeds_ratio": w_all / base_all if base_all and math.isfinite(base_all) else math.nan,
                    "censored": any(a or b for _, _, a, b in usable),
                    "ci_note": ci_note,
                    "note": "; ".join(notes),
                }
            )
    columns = [*by, warmup_col, "n", "ratio", "ratio_low", "ratio_high", "all_seeds_ratio", "censored", "ci_note"]
    return pd.DataFrame(rows, columns=[*columns, "note"])


# ---------------------------------------------------------------------------------------------------- grid check


def grid_max_ratio(grid: Sequence[float]) -> float:
    """The largest ratio of neighbouring rates, ``max_k lr_{k+1} / lr_k`` of the sorted distinct grid (NaN: < 2)."""
    values = np.unique(np.asarray(grid, dtype="float64"))
    return float(np.max(values[1:] / values[:-1])) if len(values) > 1 else math.nan


def grid_warning(grid: Sequence[float], where: str = "") -> str:
    """One line when the grid is coarser than ``sqrt 2`` (plus rounding tolerance), else ``""``."""
    ratio = grid_max_ratio(grid)
    if not math.isfinite(ratio) or ratio <= MAX_GRID_RATIO * (1 + GRID_TOLERANCE):
        return ""
    prefix = f"{where}: " if where else ""
    return (
        f"warning: {prefix}lr grid is coarse: neighbouring rates differ up to x{ratio:.3g} (> sqrt 2 = 1.41); "
        f"a 2x change of lr* can fall between grid points (use a grid with ratio <= 1.41, e.g. --per-octave 2)"
    )


# ---------------------------------------------------------------------------------------------------- sensitivity


def log_uniform_mean(grid: Sequence[float], values: Sequence[float] | np.ndarray) -> float:
    """``E_{lr ~ log-uniform}[f(lr)]`` by the trapezoid rule over ``log lr``: ``sum dx (f_k + f_{k+1}) / 2 / span``.

    A single point gives its own value.
    """
    x, f = np.log(np.asarray(grid, dtype="float64")), np.asarray(values, dtype="float64")
    if len(x) == 1:
        return float(f[0])
    return float(np.sum(np.diff(x) * (f[1:] + f[:-1]) / 2) / (x[-1] - x[0]))


def capped_losses(rows: pd.DataFrame, grid: Sequence[float]) -> tuple[np.ndarray, float, int]:
    """One seed's ``min(L(lr), L_init)`` at each grid rate, ``L_init``, and how many points were set to the cap."""
    init = pd.to_numeric(rows.get(INIT_LOSS, pd.Series(dtype="float64")), errors="coerce").to_numpy(dtype="float64")
    init = init[np.isfinite(init)]
    l_init = float(np.median(init)) if len(init) else math.nan
    losses, n_capped = [], 0
    for lr in grid:
        here = rows[(rows["_lr"] == lr) & rows["_outcome"].isin([TRAINED, UNTRAINED])]
        values = pd.to_numeric(here[LOSS], errors="coerce").to_numpy(dtype="float64")
        values = values[np.isfinite(values)]
        if len(values) and (not math.isfinite(l_init) or float(np.min(values)) < l_init):
            losses.append(float(np.min(values)))
        else:
            losses.append(l_init)
            n_capped += 1
    return np.array(losses), l_init, n_capped


def lr_sensitivity_per_seed(
    runs: pd.DataFrame, lr_col: str = "lr", by: Sequence[str] | None = None, warmup_col: str = "warmup"
) -> pd.DataFrame:
    """Wortsman's LR sensitivity of each seed (module docstring), per setup and warmup.

    Columns: the ``by`` factors, ``warmup``, ``seed``, ``sensitivity``, ``l_init``, ``best_loss``, ``n_lr``,
    ``n_capped`` (grid points counted as ``L_init``: diverged, untrained above ``L_init``, or no result).
    """
    check_columns(runs, lr_col, warmup_col)
    by = setup_factors(runs, lr_col, warmup_col) if by is None else list(by)
    rows = []
    for key, cell, grid in setup_cells(runs, by, lr_col):
        for warmup in sorted_values(cell[warmup_col]):
            at_w = cell[cell[warmup_col] == warmup]
            for seed in sorted_values(at_w["seed"]):
                capped, l_init, n_capped = capped_losses(at_w[at_w["seed"] == seed], grid)
                best = float(np.min(capped)) if np.isfinite(capped).any() else math.nan
                value = log_uniform_mean(grid, capped - best) if np.isfinite(capped).all() else math.nan
                rows.append(
                    {
                        **key,
                        warmup_col: warmup,
                        "seed": seed,
                        "sensitivity": value,
                        "l_init": l_init,
                        "best_loss": best,
                        "n_lr": len(grid),
                        "n_capped": n_capped,
                    }
                )
    columns = [*by, warmup_col, "seed", "sensitivity", "l_init", "best_loss", "n_lr", "n_capped"]
    return pd.DataFrame(rows, columns=columns)


def lr_sensitivity(
    runs: pd.DataFrame,
    lr_col: str = "lr",
    by: Sequence[str] | None = None,
    warmup_col: str = "warmup",
    *,
    bootstrap: SeedBootstrap = SEED_BOOTSTRAP,
) -> pd.DataFrame:
    """Per setup and warmup: the mean over seeds of the LR sensitivity, with its bootstrap interval
    (``bootstrap.mean``).

    Columns: the ``by`` factors, ``warmup``, ``n`` (seeds with a value), ``sensitivity``, ``sensitivity_low``,
    ``sensitivity_high``, ``l_init`` and ``best_loss`` (medians over seeds), ``n_capped`` (total over seeds),
    ``ci_note``.
    """
    by = setup_factors(runs, lr_col, warmup_col) if by is None else list(by)
    per_seed = lr_sensitivity_per_seed(runs, lr_col, by, warmup_col)
    rows = []
    for key, cell in stats.cells(per_seed, [*by, warmup_col]):
        values = cell["sensitivity"].to_numpy(dtype="float64")
        values = values[np.isfinite(values)]
        estimate, low, high, ci_note = bootstrap.mean(values)
        rows.append(
            {
                **key,
                "n": len(values),
                "sensitivity": estimate,
                "sensitivity_low": low,
                "sensitivity_high": high,
                "l_init": float(cell["l_init"].median()),
                "best_loss": float(cell["best_loss"].median()),
                "n_capped": int(cell["n_capped"].sum()),
                "ci_note": ci_note,
            }
        )
    columns = [*by, warmup_col, "n", "sensitivity", "sensitivity_low", "sensitivity_high", "l_init", "best_loss"]
    return pd.DataFrame(rows, columns=[*columns, "n_capped", "ci_note"])


# ---------------------------------------------------------------------------------------------------- the table


def regime_table(
    runs: pd.DataFrame, lr_col: str = "lr", by: Sequence[str] | None = None, warmup_col: str = "warmup"
) -> tuple[pd.DataFrame, pd.DataFrame, StableLR]:
    """``(regime, sensitivity, stable)``: per setup and warmup, ``lr*`` (all seeds), the ratio and the sensitivity.

    ``regime`` joins ``stable.all_seeds`` with ``stable_lr_ratio`` (its columns prefixed ``ratio``) and the
    sensitivity, and adds ``grid_max_ratio`` per setup.
    """
    stable = stable_lr(runs, lr_col, by, warmup_col)
    by = stable.by
    ratio = stable_lr_ratio(stable)
    sensitivity = lr_sensitivity(runs, lr_col, by, warmup_col)
    keys = [*by, warmup_col]
    table = stable.all_seeds.rename(columns={"note": "lr_star_note"})
    ratio = ratio.rename(columns={"n": "ratio_n", "censored": "ratio_censored", "ci_note": "ratio_ci_note"})
    table = table.merge(ratio.rename(columns={"note": "ratio_note"}), on=keys, how="left") if keys else table
    sens = sensitivity.rename(columns={"n": "sensitivity_n", "ci_note": "sensitivity_ci_note"})
    table = table.merge(sens, on=keys, how="left")
    table["grid_max_ratio"] = [grid_max_ratio(stable.grids[tuple(row[f] for f in by)]) for _, row in table.iterrows()]
    return table, sensitivity, stable


def interval_text(estimate: float, low: float, high: float, digits: str = ".3g") -> str:
    """``1.41 [1.19, 2]``; ``1.41 (no interval)`` when the interval is NaN; ``-`` for no estimate."""
    if not math.isfinite(estimate):
        return "-"
    if not (math.isfinite(low) and math.isfinite(high)):
        return f"{estimate:{digits}} (no CI)"
    return f"{estimate:{digits}} [{low:{digits}}, {high:{digits}}]"


def printed_table(table: pd.DataFrame, stable: StableLR) -> str:
    """The compact text table, one block per setup: W, lr*(W), ratio to W=0, LR sensitivity, and the notes."""
    by, warmup_col = stable.by, stable.warmup_col
    blocks = []
    for key, cell in stats.cells(table, by):
        title = ", ".join(f"{k}={v}" for k, v in (key or stable.fixed).items()) or "all runs"
        grid = stable.grids[tuple(key.values())]
        lines = [f"== {title}  (lr grid: {len(grid)} rates {fmt(grid[0])}..{fmt(grid[-1])}, {stable.lr_col})"]
        shown = []
        for _, row in cell.iterrows():
            lr_star = ("≥" if row["censored"] else "") + fmt(row["lr_star"])
            no_warmup = is_number(row[warmup_col]) and float(row[warmup_col]) == 0
            ratio = "-" if no_warmup else interval_text(row["ratio"], row["ratio_low"], row["ratio_high"])
            if ratio != "-" and pd.notna(row["ratio_censored"]) and bool(row["ratio_censored"]):
                ratio += " (censored)"
            sens = interval_text(row["sensitivity"], row["sensitivity_low"], row["sensitivity_high"], ".3f")
            shown.append(
                {
                    "W": row[warmup_col],
                    "seeds": row["n_seeds"],
                    "lr*(W)": lr_star,
                    "lr*/lr*(0), geo. mean [95% CI]": ratio,
                    "LR sensitivity [95% CI]": sens,
                }
            )
        lines.append(pd.DataFrame(shown).to_string(index=False))
        for _, row in cell.iterrows():
            if row["lr_star_note"]:
                lines.append(f"  W={row[warmup_col]}: lr*: {row['lr_star_note']}")
        warning = grid_warning(grid, title)
        if warning:
            lines.append(warning)
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


# ---------------------------------------------------------------------------------------------------- run mode


def lr_grid(lr_min: float, lr_max: float, per_octave: int = 2) -> list[float]:
    """A log grid from ``lr_min`` to ``lr_max`` (both included) with neighbour ratio at most ``2 ** (1/per_octave)``.

    ``n = ceil(per_octave * log2(lr_max / lr_min))`` steps of ratio ``(lr_max / lr_min) ** (1 / n)``; per-octave 2
    gives ``sqrt 2`` exactly when the range is a whole number of octaves. Values kept to 6 significant digits (as
    they are written on the command line). ``lr_min == lr_max`` gives one rate.
    """
    if not (lr_min > 0 and lr_max >= lr_min):
        raise UsageError(f"--lr-min {lr_min} --lr-max {lr_max}: need 0 < lr-min <= lr-max")
    if per_octave < 1:
        raise UsageError(f"--per-octave {per_octave}: need an integer >= 1 (2 gives ratio sqrt 2)")
    octaves = math.log2(lr_max / lr_min)
    n = math.ceil(per_octave * octaves - 1e-9)
    if n == 0:
        return [float(f"{lr_min:.6g}")]
    return [float(f"{v:.6g}") for v in np.geomspace(lr_min, lr_max, n + 1)]


def parse_warmups(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise UsageError(f"--warmup {text}: need comma-separated step counts, e.g. 0,100,500") from None
    if not values or min(values) < 0:
        raise UsageError(f"--warmup {text}: need comma-separated step counts >= 0, e.g. 0,100,500")
    return values


def find_command(args: argparse.Namespace, extra: Sequence[str]) -> list[str]:
    """The ``python -m ablate -m ...`` command of the run mode."""
    grid = lr_grid(args.lr_min, args.lr_max, args.per_octave)
    if args.seeds < 1:
        raise UsageError(f"--seeds {args.seeds}: need at least 1 (5 or more for an interval worth reading)")
    warmups = parse_warmups(args.warmup)
    return [
        sys.executable,
        "-m",
        "ablate",
        "-m",
        f"study={args.study}",
        "lr=" + ",".join(repr(v) for v in grid),
        "warmup=" + ",".join(str(w) for w in warmups),
        f"seed=range(0,{args.seeds})",
        "tracker=local",
        "tracker.progress=off",
        *extra,
    ]


def study_dir_of(study: str, extra: Sequence[str]) -> Path:
    """Where the run mode's study lands: ``hydra.sweep.dir=`` from the overrides, else ``outputs/studies/<study>``."""
    for override in extra:
        if override.startswith("hydra.sweep.dir="):
            path = Path(override.partition("=")[2])
            return path if path.is_absolute() else REPO / path
    return REPO / "outputs" / "studies" / study


def parse_find(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    extra: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, extra = argv[:cut], argv[cut + 1 :]
    p = argparse.ArgumentParser(
        prog="python -m analysis.regime find", description="run an lr x warmup study, then read it"
    )
    p.add_argument("--study", required=True, help="study name: runs into outputs/studies/<name> (resumable)")
    p.add_argument("--lr-min", type=float, required=True, help="smallest learning rate of the grid")
    p.add_argument("--lr-max", type=float, required=True, help="largest learning rate of the grid")
    p.add_argument("--per-octave", type=int, default=2, help="grid rates per doubling (2: ratio sqrt 2)")
    p.add_argument("--warmup", default="0,100,500", help="comma-separated warmup lengths (steps)")
    p.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1")
    p.add_argument("--out", type=Path, help="output directory (default: <study dir>/report/regime)")
    p.add_argument("--dry-run", action="store_true", help="print the study command and stop")
    return p.parse_args(argv), extra


def parse_analyse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m analysis.regime", description=__doc__.split("\n")[0])
    p.add_argument("study", type=Path, help="study directory (outputs/studies/<name>)")
    p.add_argument("--lr-col", default="lr", help="the lr axis: lr, lr_scale, or another numeric factor")
    p.add_argument("--warmup-col", default="warmup", help="the warmup axis (warmup or warmup_steps)")
    p.add_argument("--out", type=Path, help="output directory (default: <study>/report/regime)")
    return p.parse_args(argv)


def analyse(study_path: Path, lr_col: str, out: Path | None, warmup_col: str = "warmup") -> Path:
    """Read the study, print the table, write ``regime.csv``, ``lr_sensitivity.csv`` and the figures; the out dir."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        study = load_study(study_path)
        runs = study.runs
        check_columns(runs, lr_col, warmup_col)
        table, sensitivity, stable = regime_table(runs, lr_col, None, warmup_col)
    for w in caught[:20]:
        print(f"warning: {w.message}", file=sys.stderr)
    out = out or Path(study_path) / "report" / "regime"
    out.mkdir(parents=True, exist_ok=True)
    print(printed_table(table, stable))
    table.to_csv(out / "regime.csv", index=False)
    sensitivity.to_csv(out / "lr_sensitivity.csv", index=False)
    stable.per_seed.to_csv(out / "stable_lr_per_seed.csv", index=False)
    from analysis import regime_plots
    from analysis.plots import save

    written = save(regime_plots.phase_diagram(runs, lr_col, stable.by, warmup_col), out / "phase_diagram", ("png",))
    written += save(
        regime_plots.sensitivity_curves(runs, lr_col, stable.by, warmup_col), out / "sensitivity_curves", ("png",)
    )
    print(f"wrote {out / 'regime.csv'}, {out / 'lr_sensitivity.csv'}, " + ", ".join(str(p) for p in written))
    return out


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv[:1] == ["find"]:
            args, extra = parse_find(argv[1:])
            command = find_command(args, extra)
            print("python " + " ".join(command[1:]), flush=True)
            if args.dry_run:
                return 0
            done = subprocess.run(command, cwd=REPO, check=False)
            study_path = study_dir_of(args.study, extra)
            if done.returncode != 0:
                print(
                    f"warning: the study command exited with {done.returncode}; reading what it recorded",
                    file=sys.stderr,
                )
            analyse(study_path, "lr", args.out)
            return 0
        args = parse_analyse(argv)
        analyse(args.study, args.lr_col, args.out, args.warmup_col)
    except (StudyError, UsageError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except ValueError as err:
        print(f"error: {str(err).splitlines()[0]}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
