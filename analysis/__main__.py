"""``python -m analysis <study dir> [<study dir> ...]``: figures, tables with intervals, and a report.

Writes ``<study>/report/`` (or ``--out``): ``report.md``, a self-contained ``report.html``, ``figures/*.png``
(+ SVG), ``tables/*.csv``, all first into a hidden staging directory beside it, moved in place only when the
report is complete (a failure leaves the previous report as it was; other files there, such as ``wandb/``, stay).
A study is a directory or a name: ``<name>`` is looked up as ``outputs/studies/<name>`` when no such path exists.
Reads only run records (JSON, JSONL, YAML): no torch, nothing executed from the study. Bad input (not a study,
no run with a result, an unknown metric, factor or control) stops with one line naming what exists, exit 2.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import sys
import time
import warnings
from collections import Counter
from pathlib import Path

import pandas as pd

from analysis import findings as F
from analysis import stats
from analysis.load import Study, StudyError, find_study, load_study, unreadable_text
from analysis.report import Document, write

CAPTIONS = {
    "convergence": "Convergence: held-out loss (solid, markers: median over seeds, band: min-max) and train loss "
    "(dashed: trailing mean, lighter band) against optimizer step, one colour per level of the study's main factor "
    "(named in the title and legend); a star marks each line's lowest held-out loss, an x where a run diverged, "
    "dotted lines where each warmup ends. The step axis is logarithmic past the shortest warmup when that is short "
    "against the run.",
    "lr_schedule": "The learning rate the optimizer actually applied (opt/lr, read back each step), per colour level.",
    "sensitivity": "Sensitivity: final held-out loss against learning rate with every seed counted (capped at the "
    "chance loss, a diverged run counted at the cap; median, 95% bootstrap interval over seeds), and below it, per "
    "colour level, whether the seeds trained at each rate (open: all, half: k/n did not, filled: none): does warmup "
    "widen the usable range?",
    "early_overfitting": "Early over-fitting: held-out loss of the early (favoured) group and of the rest over the "
    "skew phase and after, per colour level; the gap at the end of the skew phase and the recovery step against "
    "warmup (colour: the main factor, marker: the cell).",
    "mechanism": "Mechanism: update-to-weight ratio, second-moment error, effective step (median, band q10-q90) "
    "and sharpness against its stability limit 2/lr over the early steps, one block per probe, one panel per setup "
    "(a setup that does not measure a probe is named in its block's title); x: where a run diverged.",
    "time_to_target": "Time to target: Kaplan-Meier fraction of seeds that reached the target by step t "
    "(runs that never reach it or diverge are censored, not dropped).",
    "forest": "Paired effects: each comparison's mean difference against the control over paired seeds (marker) "
    "with its 95% bootstrap interval (bar); left of the zero line is lower. The sentences above state the same "
    "numbers.",
}


REPORT_FIGURES = ("phase_diagram",)  # drawn by the report's own sections (the regime), not by analysis.plots


class UsageError(ValueError):
    """Bad input: printed as one line, exit status 2."""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m analysis", description=__doc__.split("\n")[0])
    p.add_argument("studies", nargs="+", type=Path, help="study directories (outputs/studies/<name>) or study names")
    p.add_argument("--out", type=Path, help="report directory (default: <study>/report)")
    p.add_argument("--metric", default="final_eval_loss", help="summary metric compared across cells")
    p.add_argument("--control", help="the control of paired comparisons, factor=value (default: warmup=0)")
    p.add_argument("--target-metric", default="eval/loss", help="history metric for time-to-target")
    p.add_argument("--target", type=float, help="time-to-target threshold (default: the rule in stats.default_target)")
    p.add_argument("--figures", help="comma-separated figure names (default: every figure that applies)")
    p.add_argument("--formats", default="png,svg", help="figure formats besides the PNG the report embeds")
    p.add_argument(
        "--colour-by",
        help="the factor the figures' colour follows (default: the study's main factor: warmup, or the factor of "
        "warmup_shape, model.norm_position, steps, optimizer, ... with most levels)",
    )
    p.add_argument("--wandb", choices=("auto", "on", "off"), default="auto", help="log the report to W&B")
    return p.parse_args(argv)


def numeric_metrics(runs: pd.DataFrame) -> list[str]:
    """The summary metrics with a value in some run (a regression study has no accuracy to compare)."""
    return [
        c
        for c in F.METRIC_LABELS
        if c in runs.columns and pd.api.types.is_numeric_dtype(runs[c]) and runs[c].notna().any()
    ]


def check_metric(study: Study, metric: str) -> None:
    available = numeric_metrics(study.runs)
    if metric not in available:
        raise UsageError(f"--metric {metric} is not a metric of this study; available: {', '.join(available)}")


def check_colour_by(study: Study, colour_by: str | None) -> None:
    """``--colour-by`` must name a factor that varies in the study."""
    if colour_by is not None and colour_by not in study.cell_factors:
        factors = ", ".join(study.cell_factors) or "(none)"
        raise UsageError(f"--colour-by {colour_by}: not a factor that varies in this study; factors: {factors}")


def choose_control(study: Study, control: str | None) -> str | None:
    """``--control`` checked against the study, or the default: warmup=0, else skew=none, else None."""
    factors = study.cell_factors
    if control is not None:
        factor, _, value = control.partition("=")
        if factor not in factors:
            raise UsageError(
                f"--control {control}: {factor} is not a factor that varies in this study; "
                f"factors: {', '.join(factors) or '(none)'}"
            )
        values = sorted({str(v) for v in study.runs[factor].dropna()}, key=natural)
        if value not in values:
            raise UsageError(f"--control {control}: no run has {factor}={value}; values: {', '.join(values)}")
        return check_control_arm(study, control, "--control")
    for factor, value in (("warmup", "0"), ("skew", "none"), ("warmup_shape", "none")):
        if factor in factors and value in {str(v) for v in study.runs[factor].dropna()}:
            return check_control_arm(study, f"{factor}={value}", "the default control")
    return None


def check_control_arm(study: Study, control: str, named: str) -> str:
    """``control`` if some run of it has a result to pair with; else one line: what its runs did, what else exists."""
    factor, _, value = control.partition("=")
    runs = study.runs
    arm = runs[stats.equals_value(runs[factor], value)]
    if arm["status"].isin(list(stats.RESULT_STATUSES)).any():
        return control
    with_result = runs[runs["status"].isin(list(stats.RESULT_STATUSES))]
    others = sorted({str(v) for v in with_result[factor].dropna()} - {value}, key=natural)
    states = ", ".join(f"{n} {status}" for status, n in Counter(arm["status"]).most_common())
    errors = arm.loc[arm["status"] == "failed", "error"]
    first = f" (first error: {str(errors.iloc[0]).splitlines()[0]})" if len(errors) else ""
    raise UsageError(
        f"{named} {control}: no run of it has a result (completed or diverged): {states}{first}; "
        f"pass --control {factor}=<value> with a value whose runs have results: {', '.join(others) or '(none)'}"
    )


def natural(value: object) -> tuple[int, float | str]:
    """Numbers in numeric order before text: 0, 50, 200, then adam, sgd."""
    try:
        return 0, float(str(value))
    except ValueError:
        return 1, str(value)


def tally(found: list[F.Finding]) -> str:
    """``8 comparisons: 2 better, 5 worse, 1 no clear difference``."""
    counts = Counter(f.verdict for f in found)
    return f"{len(found)} comparison{'s' if len(found) != 1 else ''}: " + ", ".join(
        f"{n} {v}" for v, n in sorted(counts.items(), key=lambda kv: -kv[1])
    )


def counts_table(study: Study, outcomes: pd.Series) -> pd.DataFrame:
    """Runs per status, with what the runs of each status learned (their outcomes)."""
    statuses = list(dict.fromkeys(["completed", "diverged", "failed", "running", *study.runs["status"]]))
    rows = []
    for status in statuses:
        mask = study.runs["status"] == status
        if mask.any():
            rows.append({"status": status, "runs": int(mask.sum()), "outcome": outcome_words(outcomes[mask])})
    if study.incomplete:
        rows.append({"status": "incomplete (no result.json)", "runs": len(study.incomplete), "outcome": "left out"})
    if study.unreadable:
        rows.append({"status": "unreadable result.json", "runs": len(study.unreadable), "outcome": "left out"})
    return pd.DataFrame(rows, columns=["status", "runs", "outcome"])


def outcome_words(found: pd.Series) -> str:
    """``3 trained, 1 untrained``; a failed run has no outcome (it is an error, not a measurement)."""
    counts = Counter(found)
    words = {"failed": "no outcome (an error)", "unknown": "unknown (no outcome recorded)"}
    return ", ".join(f"{counts[o]} {words.get(o, o)}" for o in F.OUTCOME_COLUMNS if counts[o])


def value_range(runs: pd.DataFrame, column: str) -> str | None:
    """``2.3`` or ``0.69 to 2.3`` (per task) for the finite values of a column; None when there are none."""
    if column not in runs.columns:
        return None
    values = pd.to_numeric(runs[column], errors="coerce").dropna()
    if values.empty:
        return None
    low, high = float(values.min()), float(values.max())
    return F.fmt(low) if F.fmt(low) == F.fmt(high) else f"{F.fmt(low)} to {F.fmt(high)} (per task)"


def outcome_rule(runs: pd.DataFrame) -> str:
    """The sentence that says what the outcomes mean, with the study's chance levels (accuracy only if measured)."""
    levels = []
    loss = value_range(runs, "chance_loss")
    if loss:
        levels.append(f"held-out loss {loss} {F.LOSS_UNIT['unit']}")
    acc = value_range(runs, "chance_acc") if F.has_accuracy(runs) else None
    if acc:
        levels.append(f"accuracy {acc}")
    chance = f" (chance level here: {', '.join(levels)})" if levels else ""
    return (
        "Outcome (`ablate/run/outcome.py`): `trained` = finished clearly better than chance on the held-out set"
        f"{chance}; `untrained` = finished but not clearly better than chance: it learned nothing worth the name "
        "and is never counted as a success; `diverged` = the loss went non-finite or exploded; a failed run has no "
        "outcome."
    )


def skewed_runs(runs: pd.DataFrame, kinds: tuple[str, ...] | None = None) -> pd.DataFrame:
    """The runs with a data skew (``skew`` other than ``none``; only ``kinds`` when given)."""
    if "skew" not in runs.columns:
        return runs.iloc[:0]
    skew = runs["skew"].astype("str")
    return runs[skew.isin(kinds)] if kinds else runs[runs["skew"].notna() & (skew != "none")]


def has_values(runs: pd.DataFrame, column: str) -> bool:
    return column in runs.columns and bool(pd.to_numeric(runs[column], errors="coerce").notna().any())


LR_COLUMNS = ("lr", "lr_scale", "lr_sharpness_multiple")  # the learning-rate axis, in order of preference
MIN_REGIME_RATES = 3


def regime_axis(study: Study) -> tuple[str | None, str]:
    """``(lr column, "")`` when the study crosses >= 3 learning rates with warmup lengths, else ``(None, why)``.

    The column is the first of ``LR_COLUMNS`` the study sweeps (a factor); else the first whose values vary.
    """
    runs = study.runs
    if "warmup" not in study.factors:
        return None, "warmup does not vary"
    swept = [c for c in LR_COLUMNS if c in study.factors]
    varying = [c for c in LR_COLUMNS if c in runs.columns and pd.to_numeric(runs[c], errors="coerce").nunique() > 1]
    if not (swept or varying):
        return None, "the learning rate does not vary (lr, lr_scale or lr_sharpness_multiple)"
    column = (swept or varying)[0]
    n_rates = pd.to_numeric(runs[column], errors="coerce").nunique()
    if n_rates < MIN_REGIME_RATES:
        return None, f"{n_rates} values of {column}: the stable-lr analysis needs at least {MIN_REGIME_RATES} rates"
    return column, ""


def text_of(value: object) -> str:
    """A note as text: ``""`` for a missing one (NaN after a merge)."""
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)


def regime_section(doc: Document, study: Study, out: Path, formats: tuple[str, ...], draw: bool) -> str | None:
    """The lr x warmup regime (``analysis.regime``): sentences, table, phase diagram. None, or why it is left out."""
    lr_col, why = regime_axis(study)
    if lr_col is None:
        return why
    from analysis import regime as R

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            table, sensitivity, stable = R.regime_table(study.runs, lr_col)
        except R.UsageError as err:
            return str(err)
    doc.h2(f"Learning-rate regime: the stable rate per warmup ({lr_col} x warmup)")
    doc.p(
        f"`lr*(W)`: the largest grid value of `{lr_col}` at which every seed with warmup W trained, there and at every "
        "smaller rate (`≥`: censored, the true value is at least this). Ratio: geometric mean over seeds of "
        "`lr*_s(W) / lr*_s(0)` with its 95% bootstrap interval. LR sensitivity (Wortsman et al. 2023): the expected "
        "excess final loss over a log-uniform rate of the grid, capped at the initial loss; lower is more robust. "
        "Rules: `docs/regime.md`."
    )
    by, warmup = stable.by, stable.warmup_col
    sentences, warnings_seen, shown = [], [], []
    for key, cell in stats.cells(table, by):
        where = f"`{F.cell_text(key, by)}`: " if by else ""
        grid = stable.grids[tuple(key.values())]
        warning = R.grid_warning(grid, F.cell_text(key, by) if by else "")
        if warning:
            warnings_seen.append(warning.removeprefix("warning: "))
        for _, row in cell.iterrows():
            w = row[warmup]
            lr_star = ("≥" if row["censored"] else "") + R.fmt(row["lr_star"])
            is_control = R.is_number(w) and float(w) == 0
            ratio = "" if is_control else R.interval_text(row["ratio"], row["ratio_low"], row["ratio_high"])
            if not is_control and "ratio" in row and math.isfinite(row["ratio"]):
                n = int(row["ratio_n"])
                censored = f" ({text_of(row.get('ratio_note'))})" if text_of(row.get("ratio_note")) else ""
                sentences.append(f"{where}lr*(W={w})/lr*(0) = {ratio} over {n} seed{'s' if n != 1 else ''}{censored}.")
            elif not is_control:
                reason = text_of(row.get("ratio_note")) or text_of(row["lr_star_note"]) or "no paired values"
                sentences.append(f"{where}lr*(W={w})/lr*(0): no value ({reason}).")
            shown.append(
                {
                    **key,
                    "W": w,
                    "seeds": row["n_seeds"],
                    "lr*(W)": lr_star,
                    "lr*/lr*(0) [95% CI]": ratio or "-",
                    "LR sensitivity [95% CI]": R.interval_text(
                        row["sensitivity"], row["sensitivity_low"], row["sensitivity_high"], ".3f"
                    ),
                    "note": text_of(row["lr_star_note"]),
                }
            )
    doc.ul(sentences)
    doc.ul([f"warning: {w}" for w in warnings_seen])
    doc.ul([f"note: {w.message}" for w in caught[:5]])
    shown_table = pd.DataFrame(shown)
    doc.table(shown_table if shown_table["note"].astype(bool).any() else shown_table.drop(columns=["note"]))
    table.to_csv(out / "tables" / "regime.csv", index=False)
    sensitivity.to_csv(out / "tables" / "lr_sensitivity.csv", index=False)
    stable.per_seed.to_csv(out / "tables" / "stable_lr_per_seed.csv", index=False)
    if draw:
        from analysis import regime_plots
        from analysis.plots import save

        with warnings.catch_warnings():  # the same warnings as above, already in the report
            warnings.simplefilter("ignore")
            fig = regime_plots.phase_diagram(study.runs, lr_col, by, warmup)
        paths = save(fig, out / "figures" / "phase_diagram", formats)
        doc.figure(
            next(p for p in paths if p.suffix == ".png"),
            f"Phase diagram: the majority outcome of the seeds per {lr_col} x warmup cell (green trained, grey "
            "untrained, vermillion diverged; pale where the seeds disagree, with k/n trained); the number is the "
            "median final held-out loss; the black bar closes the stable range, lr*(W) is the column to its left.",
        )
    return None


def build(
    study: Study,
    args: argparse.Namespace,
    out: Path,
    figures: dict[str, tuple[Path, str]],
    skipped: dict[str, str] | None = None,
    formats: tuple[str, ...] = ("png",),
    draw_regime: bool = True,
) -> Document:
    """The report: runs and outcomes, design, findings, the lr regime, figures, tables; each part only where the
    study has what it needs (a skew for early over-fitting, ``skew=spurious`` for the cue, an accuracy for
    accuracy, a divergence for the divergence findings, >= 3 rates crossed with warmup for the regime)."""
    runs, factors = study.runs, study.cell_factors
    F.set_loss_unit(runs)
    outcomes = F.run_outcomes(runs)
    names = ", ".join(sorted(set(runs["study"])))
    doc = Document(f"Warmup ablation report: {names}")
    seeds = runs.groupby(factors)["seed"].nunique() if factors else pd.Series([runs["seed"].nunique()])
    control = choose_control(study, args.control)
    doc.p(
        f"Computed by `python -m analysis` from {len(runs)} run records on {time.strftime('%Y-%m-%d %H:%M')}. "
        f"Compared metric: {F.label(args.metric)}. Seeds per cell: {int(seeds.min())}"
        f"{'' if seeds.min() == seeds.max() else f' to {int(seeds.max())}'}. Intervals are 95% percentile bootstrap "
        f"intervals over seeds ({stats.N_RESAMPLES} resamples); effects are paired seed by seed against "
        f"{f'`{control}`' if control else 'no control (no factor with a natural control varies)'}."
    )
    doc.h2("Runs")
    doc.table(counts_table(study, outcomes))
    with_result = runs["status"].isin(list(stats.RESULT_STATUSES))
    doc.p(outcome_rule(runs))
    unknown = int((outcomes == F.NO_OUTCOME).sum())
    if unknown:
        doc.p(
            f"{unknown} run{'s' if unknown != 1 else ''} record no outcome and no chance level (written before "
            "outcomes existed): counted as `unknown`, not as trained."
        )
    failed = runs[runs["status"] == "failed"]
    doc.ul([f"failed: `{r['run']}`: {r['error']}" for _, r in failed.iterrows()])
    doc.ul([f"incomplete (no result.json, left out): `{p}`" for p in study.incomplete])
    doc.ul([f"{unreadable_text(p, why)} (left out)" for p, why in study.unreadable.items()])
    if factors:
        doc.h3("Outcomes per cell")
        doc.p("Runs per cell (seeds, failed ones included) and what they learned, out of those runs.")
        counts = F.outcome_counts(runs, outcomes, factors)
        counts.to_csv(out / "tables" / "outcomes_by_cell.csv", index=False)
        doc.table(counts)
    doc.h2("Design")
    doc.ul(
        [f"`{f}`: {', '.join(str(v) for v in sorted(runs[f].dropna().unique(), key=natural))}" for f in study.factors]
        or ["no factor varies"]
    )
    fixed = [
        f
        for f in (
            "optimizer",
            "lr",
            "warmup",
            "warmup_shape",
            "schedule",
            "skew",
            "model",
            "data",
            "steps",
            "batch_size",
        )
        if f in runs.columns and f not in study.factors and runs[f].nunique() == 1
    ]
    if fixed:
        doc.p("Fixed: " + ", ".join(f"`{f}={runs[f].iloc[0]}`" for f in fixed) + ".")

    doc.h2("Findings")
    n_blocks = len(doc.blocks)
    placed: set[str] = set()  # figures shown beside their findings rather than under Figures
    if control:
        found, same, all_trained = F.outcome_findings(runs, outcomes, factors, control)
        if found:
            doc.h3(f"Outcomes against `{control}`")
            see = "; see the phase diagram" if regime_axis(study)[0] else ""
            plural = "s" if len(found) != 1 else ""
            doc.p(f"{len(found)} comparison{plural} where the outcomes differ (k/n: trained of the cell's runs{see}).")
            rest = "every run trained in both arms" if all_trained else "the same outcome counts in both arms"
            other = f"The other {same} comparisons" if same != 1 else "The other comparison"
            doc.ul([f.text for f in found] + ([f"{other}: {rest}."] if same else []))
        listed = F.effect_findings(runs, args.metric, factors, control, figure="convergence", outcomes=outcomes)
        doc.h3(f"{F.label(args.metric).capitalize()} against `{control}`")
        if listed:
            compared = outcomes[with_result]
            if compared.eq("trained").all():
                trained_note = " Every run compared trained."
            else:
                trained_note = (
                    " Runs that did not train are counted arm by arm (an untrained run's final value is compared like "
                    "any other; a diverged run has none)."
                )
            doc.p(tally(listed) + " (see the convergence figure)." + trained_note)
        doc.ul([f.text for f in listed] or ["no pair of runs to compare"])
        if listed and "forest" in figures:  # the forest plot stands with the findings it draws
            doc.figure(*figures["forest"])
            placed.add("forest")
        skewed = skewed_runs(runs)
        if control.startswith("warmup=") and has_values(skewed, "skew_gap_end"):
            gaps = F.effect_findings(
                skewed, "skew_gap_end", factors, control, "early_overfitting", outcomes[skewed.index]
            )
            if gaps:
                doc.h3("Early over-fitting: gap between the early group and the rest at the end of the skew phase")
                doc.p(tally(gaps) + " (a smaller gap is better; see the early over-fitting figure).")
                doc.ul([f.text for f in gaps])
        cued = skewed_runs(runs, ("spurious",))
        if control.startswith("warmup=") and has_values(cued, "cue_reliance_end"):
            cues = F.effect_findings(
                cued, "cue_reliance_end", factors, control, "early_overfitting", outcomes[cued.index]
            )
            if cues:
                doc.h3("Cue reliance at the end of the skew phase (`skew=spurious`)")
                doc.p(tally(cues) + " (less reliance on the cue is better; see the early over-fitting figure).")
                doc.ul([f.text for f in cues])
    if (runs["status"] == "diverged").any():  # nothing diverged: the runs table says so, no line here
        doc.h3("Divergence")
        doc.ul([f.text for f in F.divergence_findings(runs, factors)])
    if args.target_metric in study.history.columns and study.history[args.target_metric].notna().any():
        found_t, medians, target = F.time_to_target_findings(
            runs, study.history, args.target_metric, factors, args.target
        )
        doc.h3(f"Time to target: {F.label(args.target_metric)} reaching {F.fmt(target)}")
        doc.ul([f.text for f in found_t])
        medians.to_csv(out / "tables" / "time_to_target.csv", index=False)
    if len(doc.blocks) == n_blocks:
        doc.p("No comparison applies: no factor with a natural control varies and nothing diverged.")

    not_regime = regime_section(doc, study, out, formats, draw_regime)

    doc.h2("Figures")
    for name, (png, caption) in figures.items():
        if name not in placed:
            doc.figure(png, caption)
    not_drawn = {**(skipped or {}), **({"phase_diagram": not_regime} if not_regime and draw_regime else {})}
    if not_drawn:
        doc.p("Figures not drawn: " + "; ".join(f"{n}: {why}" for n, why in not_drawn.items()) + ".")

    doc.h2("Tables")
    table = stats.aggregate(runs, args.metric, factors)
    table.to_csv(out / "tables" / f"{args.metric}_by_cell.csv", index=False)
    untrained = F.outcome_counts(runs[with_result], outcomes[with_result], factors)[[*factors, "untrained"]]
    if factors:
        table = table.merge(untrained, on=factors, how="left")
    else:
        table["untrained"] = int(untrained["untrained"].sum())
    shown = table[
        [*factors, "n", "untrained", "median", "median_low", "median_high", "iqm", "iqm_low", "iqm_high", "ci_note"]
    ]
    doc.p(
        f"{F.label(args.metric).capitalize()} per cell: median and IQM over seeds with 95% intervals; `n` values "
        "(diverged runs have none), of which `untrained` did not train."
    )
    doc.table(shown)
    if control:
        effects = stats.paired_effects(
            runs, args.metric, factors, control, higher_better=bool(F.higher_better(args.metric))
        )
        effects.to_csv(out / "tables" / f"{args.metric}_paired_effects.csv", index=False)
    stats.divergence_rate(runs, factors).to_csv(out / "tables" / "divergence_rate.csv", index=False)
    runs.assign(report_outcome=outcomes).to_csv(out / "tables" / "runs.csv", index=False)
    return doc


def check_results(study: Study, study_dirs: list[Path]) -> None:
    """Stop with one line when no run has a result (completed or diverged): only errors, nothing to compare."""
    runs = study.runs
    if runs["status"].isin(list(stats.RESULT_STATUSES)).any():
        return
    parts = [f"{n} {status}" for status, n in Counter(runs["status"]).most_common()]
    if study.incomplete:
        parts.append(f"{len(study.incomplete)} without result.json")
    if study.unreadable:
        parts.append(f"{len(study.unreadable)} with an unreadable result.json")
    errors = runs.loc[runs["status"] == "failed", "error"]
    first = f" (first error: {str(errors.iloc[0]).splitlines()[0]})" if len(errors) else ""
    where = " ".join(str(path) for path in study_dirs)
    raise UsageError(
        f"no run of {where} has a result (completed or diverged): {', '.join(parts)}{first}; nothing to analyse; "
        f"see python -m ablate.status {study_dirs[0]}"
    )


# What a report consists of, moved into its directory in this order (report.md, which links the rest, last);
# anything else there (the analysis run's ``wandb/``, the user's own files) is left as it is.
REPORT_PARTS = ("figures", "tables", "report.html", "report.md")


def staging_dir(out: Path) -> Path:
    """Where a report is written before it is complete: a hidden directory next to ``out``, one per process."""
    final = out.resolve()
    return final.parent / f".{final.name}.partial-{os.getpid()}"


def move_into_place(staged: Path, out: Path) -> None:
    """Replace the report parts in ``out`` with the complete ones in ``staged`` (each part one rename)."""
    out.mkdir(parents=True, exist_ok=True)
    old = staged.with_name(staged.name.replace(".partial-", ".old-"))
    old.mkdir(exist_ok=True)
    try:
        for name in REPORT_PARTS:
            if not (staged / name).exists():
                continue
            if (out / name).exists() or (out / name).is_symlink():
                (out / name).rename(old / name)
            (staged / name).rename(out / name)
    finally:
        shutil.rmtree(old, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out = Path()
    try:
        args.studies = [find_study(path) for path in args.studies]  # a path, or a name under outputs/studies
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            study = load_study(args.studies)
        for w in caught[:20]:
            print(f"warning: {w.message}", file=sys.stderr)
        check_results(study, args.studies)
        check_metric(study, args.metric)
        control = choose_control(study, args.control)  # a bad --control stops here, before anything is drawn
        check_colour_by(study, args.colour_by)
        out = args.out or (args.studies[0] / "report" if len(args.studies) == 1 else Path("report"))
        if out.exists() and not out.is_dir():
            raise UsageError(f"--out {out}: a file, not a directory; pass a directory for the report")
        from analysis import plots

        only = args.figures.split(",") if args.figures else None
        known = [*plots.FIGURES, *REPORT_FIGURES]
        unknown = sorted(set(only or []) - set(known))
        if unknown:
            raise UsageError(f"--figures {','.join(unknown)}: unknown; figures: {', '.join(known)}")
        formats = tuple(dict.fromkeys(["png", *args.formats.split(",")]))
        options = {
            "time_to_target": {"metric": args.target_metric, "target": args.target},
            "forest": {"metric": args.metric, "control": control, "factors": study.cell_factors},
        }
        drawn = None if only is None else [n for n in only if n in plots.FIGURES]
        # The report is written whole into a staging directory and moved in place only when complete: an error
        # on the way leaves the previous report as it was, and no half-written one.
        staged = staging_dir(out)
        try:
            (staged / "tables").mkdir(parents=True)
            rendered = plots.make_figures(
                study, staged / "figures", formats=formats, only=drawn, options=options, colour_by=args.colour_by
            )
            figures = {name: (png, CAPTIONS.get(name, name)) for name, png in rendered.items()}
            draw_regime = only is None or "phase_diagram" in only
            doc = build(study, args, staged, figures, rendered.skipped, formats, draw_regime)
            md, page = write(doc, staged)
            move_into_place(staged, out)
        finally:
            shutil.rmtree(staged, ignore_errors=True)
        md, page = out / md.name, out / page.name
        figures = {name: (out / png.relative_to(staged), caption) for name, (png, caption) in figures.items()}
    except (StudyError, UsageError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except ValueError as err:  # e.g. a control without pairs, from the statistics
        print(f"error: {str(err).splitlines()[0]}", file=sys.stderr)
        return 2
    except OSError as err:  # a full disk, a read-only directory
        print(f"error: cannot write the report to {out}: {err}", file=sys.stderr)
        return 1
    print(f"report: {md}\nhtml:   {page}")
    if args.wandb != "off" and len(args.studies) == 1:
        from analysis.to_wandb import log_analysis, study_uses_wandb

        if args.wandb == "on" or study_uses_wandb(args.studies[0]):
            run_dir = log_analysis(
                args.studies[0], out, {n: p for n, (p, _) in figures.items()}, {"runs": study.runs}, page
            )
            if run_dir is not None:
                print(f"W&B:    {run_dir} (job_type=analysis; upload with python -m ablate.sync {args.studies[0]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
