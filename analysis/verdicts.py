"""Verdicts with four outcomes, judged only where the claim can show: the regime check and the cell rules.

A claim about warmup can only be tested where training *without* warmup is in trouble. Every claim here is
judged in three steps, each written down so that a verdict can be recomputed by hand from the runs table:

1. **Quality of a run** (``capped_loss``): its final held-out loss, capped at the chance loss of its task
   (``ablate.run.objective``), with a diverged run (or one without a finite final loss) counted *at* the cap. So a
   run that blew up and a run that learned nothing are equally bad, and every run of a pair has a value: a
   comparison of "diverged" with "trained" is a large improvement, not a dropped pair. (Wortsman et al. 2023 cap
   at the loss at initialisation for the same reason.)
2. **Regime** (``control_fails``): a cell (one combination of the factors other than the seed and the compared
   factor) is *in the regime* when its control arm (e.g. ``warmup=0``) *fails*: at least half of its seeds end
   ``untrained`` or ``diverged`` (``ablate.run.outcome``). Cells outside the regime are reported but never counted
   for or against a claim: a warmup cannot rescue a run that is fine without it.
3. **Cell verdict** (``cell_verdict``), treatment against control, paired seed by seed on ``capped_loss``
   (``analysis.stats.paired_effects``, 95% percentile bootstrap over seeds):

   * ``helps``: the interval of treatment - control lies below 0;
   * ``hurts``: it lies above 0;
   * ``no help``: it covers 0 *and* the treatment arm trains no more often than the control (both fail alike:
     a clear null, not a lack of data);
   * ``unclear``: otherwise (the interval covers 0 but the arms' outcomes differ, or one seed only).

The claim-level verdict over a set of cells (``aggregate``) is one of four words:

* ``not tested``: no cell is in the regime (``regime not reached: no arm fails without warmup``);
* ``supported``: the cells the claim predicts right outnumber those it predicts wrong and are at least half;
* ``contradicted``: the cells it predicts wrong outnumber those it predicts right and are at least half;
* ``inconclusive``: otherwise (mostly ``unclear`` cells: intervals that cover zero).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis import stats

SUPPORTED = "supported"
CONTRADICTED = "contradicted"
NOT_TESTED = "not tested"
INCONCLUSIVE = "inconclusive"
VERDICTS = (SUPPORTED, CONTRADICTED, NOT_TESTED, INCONCLUSIVE)
NOT_TESTED_TEXT = "not tested (regime not reached: no arm fails or suffers without warmup)"

HELPS, HURTS, NO_HELP, UNCLEAR = "helps", "hurts", "no help", "unclear"
QUALITY = "capped_loss"


def outcome_of(runs: pd.DataFrame) -> pd.Series:
    """Each run's outcome; records from before outcomes existed: diverged, else trained if below chance."""
    if "outcome" in runs and runs["outcome"].notna().any():
        return runs["outcome"].astype("object")
    loss = pd.to_numeric(runs.get("final_eval_loss"), errors="coerce")
    chance = pd.to_numeric(runs.get("chance_loss"), errors="coerce")
    trained = np.where(loss < chance, "trained", "untrained")
    return pd.Series(np.where(runs["status"] == "diverged", "diverged", trained), index=runs.index, dtype="object")


def with_quality(runs: pd.DataFrame) -> pd.DataFrame:
    """``runs`` with ``capped_loss = min(final_eval_loss, chance_loss)``, the cap for diverged or non-finite runs,
    and ``trained`` (bool) from the outcome."""
    out = runs.copy()
    loss = pd.to_numeric(out["final_eval_loss"], errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    chance = pd.to_numeric(out["chance_loss"], errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    capped = np.where(np.isfinite(loss), np.minimum(loss, chance), chance)
    out[QUALITY] = np.where(out["status"].isin(stats.RESULT_STATUSES), capped, np.nan)
    out["outcome"] = outcome_of(out)
    out["trained"] = out["outcome"] == "trained"
    return out


def control_fails(runs: pd.DataFrame, cell_by: Sequence[str], control: str) -> pd.DataFrame:
    """Per cell of ``cell_by`` (the factors other than the compared one and the seed): how the control arm did.

    Columns: ``cell_by``, ``control_runs``, ``control_trained``, ``in_regime`` (at least half of the control's
    seeds not ``trained``).
    """
    factor, value = stats.parse_control(control)
    rows = runs[stats.control_rows(runs, factor, value) & runs["status"].isin(stats.RESULT_STATUSES)]
    out = []
    for key, cell in stats.cells(rows, list(cell_by)):
        n, trained = len(cell), int(cell["trained"].sum())
        out.append({**key, "control_runs": n, "control_trained": trained, "in_regime": 2 * (n - trained) >= n})
    return pd.DataFrame(out, columns=[*cell_by, "control_runs", "control_trained", "in_regime"])


@dataclass(frozen=True)
class CellVerdict:
    verdict: str  # helps, hurts, no help, unclear
    text: str  # the numbers behind it, one clause


def cell_verdict(row: pd.Series, treatment_trained: tuple[int, int], control_trained: tuple[int, int]) -> CellVerdict:
    """The verdict of one paired-effects row (``stats.paired_effects`` on ``capped_loss``); ``*_trained`` are
    (trained, runs) of each arm."""
    low, high, mean = row["mean_diff_low"], row["mean_diff_high"], row["mean_diff"]
    t_share = treatment_trained[0] / max(treatment_trained[1], 1)
    c_share = control_trained[0] / max(control_trained[1], 1)
    numbers = (
        f"{treatment_trained[0]}/{treatment_trained[1]} trained vs {control_trained[0]}/{control_trained[1]}; "
        f"capped loss {mean:+.3g}" + (f" [{low:+.3g}, {high:+.3g}]" if bool(row["ci_available"]) else " (no interval)")
    )
    if bool(row["ci_available"]) and high < 0:
        return CellVerdict(HELPS, numbers)
    if bool(row["ci_available"]) and low > 0:
        return CellVerdict(HURTS, numbers)
    if bool(row["ci_available"]) and t_share <= c_share:
        return CellVerdict(NO_HELP, numbers)
    return CellVerdict(UNCLEAR, numbers)


def compare(runs: pd.DataFrame, factors: Sequence[str], control: str) -> pd.DataFrame:
    """Every treatment cell against its control on ``capped_loss``, paired by seed, with the regime and the cell
    verdict. ``factors``: the study's cell factors (the compared factor among them).

    Columns: the factors, ``in_regime``, ``control_trained``/``control_runs``, ``trained``/``runs`` (treatment),
    ``mean_diff`` with its interval, ``n_pairs``, ``verdict`` and ``text``.
    """
    factor, value = stats.parse_control(control)
    others = [f for f in factors if f != factor]
    effects = stats.paired_effects(runs, QUALITY, list(factors), control, higher_better=False)
    effects = effects[effects["n_pairs"] > 0]
    regime = control_fails(runs, others, control)
    usable = runs[runs["status"].isin(stats.RESULT_STATUSES)]
    rows = []
    for _, row in effects.iterrows():
        key = {f: row[f] for f in factors}
        arm = usable[np.logical_and.reduce([stats.equals_value(usable[f], v) for f, v in key.items()])]
        reg = regime
        for f in others:
            reg = reg[stats.equals_value(reg[f], row[f])]
        c_trained, c_runs = (
            (int(reg["control_trained"].iat[0]), int(reg["control_runs"].iat[0])) if len(reg) else (0, 0)
        )
        verdict = cell_verdict(row, (int(arm["trained"].sum()), len(arm)), (c_trained, c_runs))
        rows.append(
            {
                **key,
                "in_regime": bool(reg["in_regime"].iat[0]) if len(reg) else False,
                "control_trained": c_trained,
                "control_runs": c_runs,
                "trained": int(arm["trained"].sum()),
                "runs": len(arm),
                "mean_diff": row["mean_diff"],
                "mean_diff_low": row["mean_diff_low"],
                "mean_diff_high": row["mean_diff_high"],
                "n_pairs": int(row["n_pairs"]),
                "verdict": verdict.verdict,
                "text": verdict.text,
            }
        )
    columns = [*factors, "in_regime", "control_trained", "control_runs", "trained", "runs", "mean_diff"]
    columns += ["mean_diff_low", "mean_diff_high", "n_pairs", "verdict", "text"]
    return pd.DataFrame(rows, columns=columns)


def best_per_cell(table: pd.DataFrame, others: Sequence[str]) -> pd.DataFrame:
    """One row per cell of ``others``: the treatment with the lowest mean capped-loss difference (the best warmup
    of the grid there), so a cell counts once however many warmup lengths it tried."""
    if table.empty:
        return table
    if not others:
        return table.loc[[table["mean_diff"].idxmin()]]
    return table.loc[table.groupby(list(others), dropna=False)["mean_diff"].idxmin()]


def aggregate(right: int, wrong: int, in_regime: int) -> str:
    """The claim-level word from counts of in-regime cells the claim predicts right / wrong (module docstring)."""
    if in_regime == 0:
        return NOT_TESTED
    if right > wrong and 2 * right >= in_regime:
        return SUPPORTED
    if wrong > right and 2 * wrong >= in_regime:
        return CONTRADICTED
    return INCONCLUSIVE


def predicts_help(table: pd.DataFrame) -> tuple[str, int, int, int]:
    """For a claim that warmup helps in every in-regime cell of ``table`` (``compare``): (verdict, cells right,
    cells wrong, cells in regime). Right: ``helps``; wrong: ``hurts`` or ``no help``."""
    in_regime = table[table["in_regime"]]
    right = int((in_regime["verdict"] == HELPS).sum())
    wrong = int(in_regime["verdict"].isin([HURTS, NO_HELP]).sum())
    return aggregate(right, wrong, len(in_regime)), right, wrong, len(in_regime)


def predicts_no_help(table: pd.DataFrame) -> tuple[str, int, int, int]:
    """For a claim that warmup makes no difference in the in-regime cells: right ``no help``; wrong ``helps``."""
    in_regime = table[table["in_regime"]]
    right = int((in_regime["verdict"] == NO_HELP).sum())
    wrong = int((in_regime["verdict"] == HELPS).sum())
    return aggregate(right, wrong, len(in_regime)), right, wrong, len(in_regime)


def regime_sentence(table: pd.DataFrame, others: Sequence[str], control: str, where: str = "") -> str:
    """ "Regime: the control arm `warmup=0` fails ... in 3 of 4 cells; reached." (``table``: ``compare``)."""
    cells = table.drop_duplicates(subset=list(others)) if others else table.head(1)
    n = len(cells)
    failing = int(cells["in_regime"].sum())
    head = f"Regime{where}: the control arm `{control}` fails (at least half its seeds untrained or diverged) in "
    tail = "; reached." if failing else "; not reached, so these cells cannot test the claim."
    return head + f"{failing} of {n} cell{'s' if n != 1 else ''}" + tail
