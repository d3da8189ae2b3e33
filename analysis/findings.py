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

from analysis import stats

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
    "cue_reliance_end": "cue reliance at the end of the skew phase (nats)",
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


def label(metric: str) -> str:
    return METRIC_LABELS.get(metric, metric)


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
    runs: pd.DataFrame, metric: str, factors: Sequence[str], control: str, figure: str | None = "sensitivity"
) -> list[Finding]:
    """One finding per treatment cell: its metric minus its control's, paired by seed."""
    better = higher_better(metric)
    effects = stats.paired_effects(runs, metric, list(factors), control, higher_better=bool(better))
    control_factor = stats.parse_control(control)[0]
    others = [f for f in factors if f != control_factor]
    out = []
    for _, row in effects.iterrows():
        if row["n_pairs"] == 0:
            continue
        direction, word = verdict(row["mean_diff_low"], row["mean_diff_high"], bool(row["ci_available"]), better)
        where = f" ({cell_text(row, others)})" if others else ""
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
            f"`{control_factor}={row[control_factor]}` vs `{row['control']}`{where}: {label(metric)} "
            f"{'+' if row['mean_diff'] > 0 else ''}{fmt(row['mean_diff'])}, {interval}, {seeds}{p_improve} "
            f"-> {summary}."
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
