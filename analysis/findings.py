"""Findings: sentences computed from a study's statistics, never written by hand for a particular study.

Each comparison is stated with its effect size (in the metric's units), its 95% interval, the number of seeds
(pairs) and a verdict read off the interval: ``lower``/``higher`` (and whether that is better) when the
interval excludes zero, ``no clear difference`` when it covers zero, ``no interval`` with a single seed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from analysis import regime, stats

METRIC_LABELS = {
    "final_eval_loss": "final held-out loss (nats)",
    "best_eval_loss": "best held-out loss (nats)",
    "final_eval_acc": "final held-out accuracy",
    "best_eval_acc": "best held-out accuracy",
    "final_train_loss": "final train loss (nats)",
    "skew_gap_end": "early-group over-fitting gap at the end of the skew phase (nats)",
    "skew_excess_gap": "over-fitting gap the skew adds at the end of the skew phase, over the skew=none twin (nats)",
    "skew_gap_peak": "peak early-group over-fitting gap (nats)",
    "rest_recovery_step": "steps until the rest group recovers (steps)",
    "early_train_eval_gap": "early train - held-out gap (nats)",
    "cue_reliance_end": "cue reliance at the end of the skew phase (accuracy with the cue minus with it flipped)",
    "eval/loss": "held-out loss (nats)",
    "eval/acc": "held-out accuracy",
}


@dataclass(frozen=True)
class Finding:
    topic: str  # "effect", "early over-fitting", "divergence", "time to target"
    text: str  # one sentence, plain text with `code` spans
    figure: str | None  # the figure (name in plots.FIGURES) that shows it
    verdict: str  # better, worse, no clear difference, no interval, ...


LOWER_IS_BETTER = (
    "skew_gap_end",
    "skew_excess_gap",
    "skew_gap_peak",
    "rest_recovery_step",
    "early_train_eval_gap",
    "cue_reliance_end",
)


def higher_better(metric: str) -> bool | None:
    """True/False when a higher value of ``metric`` is better/worse; None when the direction is not known."""
    if metric in LOWER_IS_BETTER or metric.endswith(("_step", "_time_s")):
        return False
    try:
        return stats.higher_is_better(metric)
    except ValueError:
        return None


# The unit of the losses in labels: "nats" (classification, cross-entropy), or set by ``set_loss_unit`` for a study
# of regression tasks (mean squared error, no accuracy) or a mix of both.
LOSS_UNIT = {"unit": "nats"}


def set_loss_unit(runs: pd.DataFrame) -> str:
    """Set the loss unit of every label from the study: ``nats``, ``MSE`` (no run has an accuracy) or both."""
    has_acc = "final_eval_acc" in runs.columns and runs["final_eval_acc"].notna().any()
    with_loss = runs[runs["final_eval_loss"].notna()] if "final_eval_loss" in runs.columns else runs.iloc[:0]
    some_without = "final_eval_acc" not in with_loss.columns or with_loss["final_eval_acc"].isna().any()
    LOSS_UNIT["unit"] = "nats" if has_acc and not some_without else "MSE" if not has_acc else "nats or MSE"
    return LOSS_UNIT["unit"]


def has_accuracy(runs: pd.DataFrame) -> bool:
    """Whether some run measured a held-out accuracy (a regression study has none)."""
    return "final_eval_acc" in runs.columns and bool(runs["final_eval_acc"].notna().any())


def label(metric: str) -> str:
    text = METRIC_LABELS.get(metric, metric)
    return text.replace("(nats)", f"({LOSS_UNIT['unit']})") if LOSS_UNIT["unit"] != "nats" else text


def fmt(x: float) -> str:
    """3 significant digits, plain notation where that reads well."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    if x == 0:
        return "0"
    if 1e-3 <= abs(x) < 1e5:
        digits = max(0, 2 - math.floor(math.log10(abs(x))))
        return f"{x:.{digits}f}"
    return f"{x:.2e}"


def cell_text(row: pd.Series | dict[str, Any], factors: Sequence[str]) -> str:
    parts = [f"{f}={row[f]:.6g}" if isinstance(row[f], float) else f"{f}={row[f]}" for f in factors]
    return ", ".join(parts) if parts else "all runs"


def verdict(low: float, high: float, available: bool, higher_better: bool | None) -> tuple[str, str]:
    """(direction, verdict) from an interval of ``treatment - control``."""
    if not available or math.isnan(low) or math.isnan(high):
        return "", "no interval"
    if low <= 0 <= high:
        return "", "no clear difference"
    direction = "higher" if low > 0 else "lower"
    if higher_better is None:
        return direction, direction
    better = (direction == "higher") == higher_better
    return direction, "better" if better else "worse"


def effect_findings(
    runs: pd.DataFrame,
    metric: str,
    factors: Sequence[str],
    control: str,
    figure: str | None = "sensitivity",
    outcomes: pd.Series | None = None,
) -> list[Finding]:
    """One finding per treatment cell: its metric minus its control's, paired by seed.

    With ``outcomes`` (``run_outcomes``), a finding whose arms hold runs that did not train says how many, arm by
    arm, out of the arm's runs with a result (untrained runs are compared like the others; diverged runs have no
    final value and are left out).
    """
    better = higher_better(metric)
    effects = stats.paired_effects(runs, metric, list(factors), control, higher_better=bool(better))
    control_factor = stats.parse_control(control)[0]
    others = [f for f in factors if f != control_factor]
    out = []
    with_result = runs["status"].isin(list(stats.RESULT_STATUSES))
    for _, row in effects.iterrows():
        where = f" ({cell_text(row, others)})" if others else ""
        note = ""
        if outcomes is not None:
            treatment = cell_mask(runs, {**{f: row[f] for f in others}, control_factor: row[control_factor]})
            baseline = cell_mask(runs, {f: row[f] for f in others}) & stats.equals_value(
                runs[control_factor], stats.parse_control(control)[1]
            )
            note = arms_note(outcomes[treatment & with_result], outcomes[baseline & with_result])
        head = f"`{control_factor}={row[control_factor]}` vs `{row['control']}`{where}: {label(metric)}"
        if row["n_pairs"] == 0:
            if note:  # a comparison the outcomes decide (e.g. every control run diverged): said, not dropped
                out.append(Finding("effect", f"{head}: no pair of seeds with a value{note}.", figure, "no pair"))
            continue
        direction, word = verdict(row["mean_diff_low"], row["mean_diff_high"], bool(row["ci_available"]), better)
        interval = (
            f"95% CI [{fmt(row['mean_diff_low'])}, {fmt(row['mean_diff_high'])}]"
            if row["ci_available"]
            else f"no interval: {row['ci_note']}"
        )
        seeds = f"{int(row['n_pairs'])} seed{'s' if row['n_pairs'] != 1 else ''}"
        if word == "no clear difference":
            summary = "no clear difference"
        elif word == "no interval":
            summary = "cannot tell with one seed"
        else:
            summary = f"{direction} ({word})" if word in ("better", "worse") else direction
        p_improve = f"; {fmt(100 * row['p_improvement'])}% of seeds improve" if better is not None else ""
        text = (
            f"{head} {'+' if row['mean_diff'] > 0 else ''}{fmt(row['mean_diff'])}, {interval}, {seeds}{p_improve} "
            f"-> {summary}{note}."
        )
        out.append(Finding("effect", text, figure, word))
    return out


def divergence_findings(runs: pd.DataFrame, factors: Sequence[str]) -> list[Finding]:
    """Cells where some runs diverged, with the Wilson interval of the rate."""
    rates = stats.divergence_rate(runs, list(factors))
    out = []
    for _, row in rates[rates["n_diverged"] > 0].iterrows():
        text = (
            f"{cell_text(row, factors)}: {int(row['n_diverged'])} of {int(row['n_runs'])} runs diverged "
            f"(rate {fmt(row['rate'])}, 95% Wilson interval [{fmt(row['rate_low'])}, {fmt(row['rate_high'])}])."
        )
        out.append(Finding("divergence", text, "sensitivity", "diverged"))
    if rates["n_diverged"].sum() == 0 and len(rates):
        out.append(Finding("divergence", f"No run diverged ({int(rates['n_runs'].sum())} runs).", None, "none"))
    return out


def time_to_target_findings(
    runs: pd.DataFrame, history: pd.DataFrame, metric: str, factors: Sequence[str], target: float | None
) -> tuple[list[Finding], pd.DataFrame, float]:
    """Kaplan-Meier median steps to reach ``target`` (default rule: ``stats.default_target``) per cell."""
    if target is None:
        target = stats.default_target(runs, history, metric, list(factors))
    times = stats.time_to_target(runs, history, metric, target, list(factors))
    medians = stats.median_time_to_target(times, list(factors))
    out = []
    for _, row in medians.iterrows():
        reached = f"{int(row['n_reached'])} of {int(row['n_runs'])} runs reached it"
        when = f"median {int(row['median_step'])} steps" if not math.isnan(row["median_step"]) else row["note"] or "n/a"
        sign = ">=" if higher_better(metric) else "<="
        text = f"{cell_text(row, factors)}: {label(metric)} {sign} {fmt(target)}"
        out.append(Finding("time to target", f"{text}: {when} (Kaplan-Meier), {reached}.", "time_to_target", when))
    return out, medians, target


# ---------------------------------------------------------------------------------------------------- outcomes

OUTCOME_COLUMNS = ("trained", "untrained", "diverged", "failed", "unknown")
NO_OUTCOME = "unknown"


def run_outcomes(runs: pd.DataFrame) -> pd.Series:
    """Each run's outcome for the report: ``trained``, ``untrained``, ``diverged``, ``failed`` or ``unknown``.

    The recorded ``outcome`` (``ablate.run.outcome``) when there is one. A record written before outcomes existed:
    ``diverged`` for status ``diverged``; for a completed run with a recorded ``chance_loss``, the fallback of
    ``analysis.regime.outcomes`` (trained when ``final_eval_loss < chance_loss``); else ``unknown``: a completed
    run is never taken as trained without a chance level to judge it by. ``failed`` for a failed run; a run without
    a result of any other status (running) is ``unknown``.
    """
    status = runs["status"].astype("str")
    recorded = runs["outcome"] if "outcome" in runs.columns else pd.Series(None, index=runs.index, dtype="object")
    found = pd.Series(NO_OUTCOME, index=runs.index, dtype="object")
    valid = recorded.isin(list(regime.OUTCOMES))
    found[valid] = recorded[valid]
    chance = pd.to_numeric(runs.get("chance_loss", pd.Series(math.nan, index=runs.index)), errors="coerce")
    judged = ~valid & status.isin(list(stats.RESULT_STATUSES)) & ((status == "diverged") | chance.notna())
    if judged.any():
        found[judged] = regime.outcomes(runs.loc[judged])
    found[status == "failed"] = "failed"
    return found


def cell_mask(runs: pd.DataFrame, key: dict[str, Any]) -> pd.Series:
    """The runs of one cell (a NaN key value matches NaN)."""
    mask = pd.Series(True, index=runs.index)
    for factor, value in key.items():
        column = runs[factor]
        mask &= column.isna() if pd.isna(value) else column == value
    return mask


def outcome_counts(runs: pd.DataFrame, outcomes: pd.Series, factors: Sequence[str]) -> pd.DataFrame:
    """Per cell: ``runs`` (seeds, failed ones included) and how many ``trained``/``untrained``/``diverged``/``failed``
    (and ``unknown``, a column only when some run has no outcome)."""
    table = runs[list(factors)].assign(_outcome=outcomes.to_numpy())
    rows = []
    for key, cell in stats.cells(table, list(factors)):
        counts = cell["_outcome"].value_counts()
        rows.append({**key, "runs": len(cell), **{o: int(counts.get(o, 0)) for o in OUTCOME_COLUMNS}})
    columns = [*factors, "runs", *OUTCOME_COLUMNS]
    frame = pd.DataFrame(rows, columns=columns)
    return frame if frame[NO_OUTCOME].any() else frame.drop(columns=[NO_OUTCOME])


def outcome_text(found: pd.Series) -> str:
    """``0/5 trained (5 untrained)``, ``5/5 trained``, ``3/5 trained (1 diverged, 1 failed)``."""
    counts = found.value_counts()
    others = [f"{int(counts[o])} {o}" for o in OUTCOME_COLUMNS[1:] if counts.get(o, 0)]
    text = f"{int(counts.get('trained', 0))}/{len(found)} trained"
    return text + (f" ({', '.join(others)})" if others else "")


def arms_note(treatment: pd.Series, control: pd.Series) -> str:
    """``; untrained: 0 of 5 vs 5 of 5`` when an arm holds runs that did not train, else ``""``."""
    parts = []
    for word, extra in (("untrained", ""), ("diverged", ", no final value, left out")):
        a, b = int((treatment == word).sum()), int((control == word).sum())
        if a or b:
            parts.append(f"{word}: {a} of {len(treatment)} vs {b} of {len(control)}{extra}")
    if not parts:
        return ""
    untrained = treatment.isin(["untrained", "diverged"]).all() and control.isin(["untrained", "diverged"]).all()
    return "; " + "; ".join(parts) + ("; neither arm trained" if untrained else "")


def outcome_findings(
    runs: pd.DataFrame, outcomes: pd.Series, factors: Sequence[str], control: str
) -> tuple[list[Finding], int, bool]:
    """Each treatment cell whose outcome counts differ from its control's: ``lr=0.01: warmup=0 0/5 trained
    (5 untrained) vs warmup=100 5/5 trained``. Also returns how many comparisons had the same counts in both
    arms, and whether those were all fully trained."""
    factor, value = stats.parse_control(control)
    others = [f for f in factors if f != factor]
    is_control = stats.equals_value(runs[factor], value)
    found, same, all_trained = [], 0, True
    for key, cell in stats.cells(runs[~is_control], [*others, factor]):
        treatment = outcomes[cell.index]
        base = outcomes[cell_mask(runs, {f: key[f] for f in others}) & is_control]
        if base.empty:
            continue
        counts_t, counts_c = treatment.value_counts().to_dict(), base.value_counts().to_dict()
        if counts_t == counts_c:
            same += 1
            all_trained &= set(counts_t) == {"trained"}
            continue
        where = f"`{cell_text(key, others)}`: " if others else ""
        treated = cell_text(key, [factor])
        text = f"{where}`{factor}={value}` {outcome_text(base)} vs `{treated}` {outcome_text(treatment)}."
        t_rate = counts_t.get("trained", 0) / len(treatment)
        c_rate = counts_c.get("trained", 0) / len(base)
        word = "more trained" if t_rate > c_rate else "fewer trained" if t_rate < c_rate else "other failures"
        found.append(Finding("outcome", text, "phase_diagram", word))
    return found, same, all_trained
