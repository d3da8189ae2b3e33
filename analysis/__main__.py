"""``python -m analysis <study dir> [<study dir> ...]``: figures, tables with intervals, and a report.

Writes ``<study>/report/`` (or ``--out``): ``report.md``, a self-contained ``report.html``, ``figures/*.png``
(+ SVG), ``tables/*.csv``. Reads only run records (JSON, JSONL, YAML): no torch, nothing executed from the
study. Bad input (not a study, an unknown metric, factor or control) stops with one line naming what exists.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from collections import Counter
from pathlib import Path

import pandas as pd

from analysis import findings as F
from analysis import stats
from analysis.load import Study, StudyError, load_study
from analysis.report import Document, write

CAPTIONS = {
    "convergence": "Convergence: held-out loss (solid: median over seeds, band: min-max) and train loss (dashed: "
    "trailing mean) against optimizer step, one colour per warmup length; dotted lines mark where each warmup ends.",
    "lr_schedule": "The learning rate the optimizer actually applied (opt/lr, read back each step), per warmup.",
    "sensitivity": "Sensitivity: final held-out loss (median, 95% bootstrap interval over seeds) and share of "
    "diverged seeds against learning rate, one line per warmup: does warmup widen the usable range?",
    "early_overfitting": "Early over-fitting: held-out loss of the early (favoured) group and of the rest over the "
    "skew phase and after, per warmup; the gap at the end of the skew phase and the recovery step against warmup.",
    "mechanism": "Mechanism: update-to-weight ratio, second-moment error, effective step (median, band q10-q90) "
    "and sharpness against its stability limit 2/lr over the early steps.",
    "time_to_target": "Time to target: Kaplan-Meier fraction of seeds that reached the target by step t "
    "(runs that never reach it or diverge are censored, not dropped).",
}


class UsageError(ValueError):
    """Bad input: printed as one line, exit status 2."""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m analysis", description=__doc__.split("\n")[0])
    p.add_argument("studies", nargs="+", type=Path, help="study directories (outputs/studies/<name>)")
    p.add_argument("--out", type=Path, help="report directory (default: <study>/report)")
    p.add_argument("--metric", default="final_eval_loss", help="summary metric compared across cells")
    p.add_argument("--control", help="the control of paired comparisons, factor=value (default: warmup=0)")
    p.add_argument("--target-metric", default="eval/loss", help="history metric for time-to-target")
    p.add_argument("--target", type=float, help="time-to-target threshold (default: the rule in stats.default_target)")
    p.add_argument("--figures", help="comma-separated figure names (default: every figure that applies)")
    p.add_argument("--formats", default="png,svg", help="figure formats besides the PNG the report embeds")
    p.add_argument("--wandb", choices=("auto", "on", "off"), default="auto", help="log the report to W&B")
    return p.parse_args(argv)


def numeric_metrics(runs: pd.DataFrame) -> list[str]:
    return [c for c in F.METRIC_LABELS if c in runs.columns and pd.api.types.is_numeric_dtype(runs[c])]


def check_metric(study: Study, metric: str) -> None:
    available = numeric_metrics(study.runs)
    if metric not in available:
        raise UsageError(f"--metric {metric} is not a metric of this study; available: {', '.join(available)}")


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
        return control
    for factor, value in (("warmup", "0"), ("skew", "none"), ("warmup_shape", "none")):
        if factor in factors and value in {str(v) for v in study.runs[factor].dropna()}:
            return f"{factor}={value}"
    return None


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


def counts_table(study: Study) -> pd.DataFrame:
    counts = Counter(study.runs["status"])
    rows = [{"status": s, "runs": counts[s]} for s in ("completed", "diverged", "failed", "running") if counts[s]]
    rows += [
        {"status": s, "runs": n} for s, n in counts.items() if s not in ("completed", "diverged", "failed", "running")
    ]
    if study.incomplete:
        rows.append({"status": "incomplete (no result.json)", "runs": len(study.incomplete)})
    return pd.DataFrame(rows)


def build(study: Study, args: argparse.Namespace, out: Path, figures: dict[str, tuple[Path, str]]) -> Document:
    runs, factors = study.runs, study.cell_factors
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
    doc.table(counts_table(study))
    failed = runs[runs["status"] == "failed"]
    doc.ul([f"failed: `{r['run']}`: {r['error']}" for _, r in failed.iterrows()])
    doc.ul([f"incomplete (no result.json, left out): `{p}`" for p in study.incomplete])
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
    doc.p("Fixed: " + ", ".join(f"`{f}={runs[f].iloc[0]}`" for f in fixed) + ".")

    doc.h2("Findings")
    listed: list[F.Finding] = []
    if control:
        doc.h3(f"{F.label(args.metric).capitalize()} against `{control}`")
        listed = F.effect_findings(runs, args.metric, factors, control, figure="convergence")
        if listed:
            doc.p(tally(listed) + " (see the convergence figure).")
        doc.ul([f.text for f in listed] or ["no pair of runs to compare"])
        skewed = "skew_gap_end" in runs and runs["skew_gap_end"].notna().any()
        if skewed and control.startswith("warmup="):
            doc.h3("Early over-fitting: gap between the early group and the rest at the end of the skew phase")
            gaps = F.effect_findings(runs, "skew_gap_end", factors, control, "early_overfitting")
            if gaps:
                doc.p(tally(gaps) + " (a smaller gap is better; see the early over-fitting figure).")
            doc.ul([f.text for f in gaps])
    doc.h3("Divergence")
    doc.ul([f.text for f in F.divergence_findings(runs, factors)])
    if args.target_metric in study.history.columns:
        found, medians, target = F.time_to_target_findings(
            runs, study.history, args.target_metric, factors, args.target
        )
        doc.h3(f"Time to target: {F.label(args.target_metric)} reaching {F.fmt(target)}")
        doc.ul([f.text for f in found])
        medians.to_csv(out / "tables" / "time_to_target.csv", index=False)

    doc.h2("Figures")
    for png, caption in figures.values():
        doc.figure(png, caption)

    doc.h2("Tables")
    table = stats.aggregate(runs, args.metric, factors)
    table.to_csv(out / "tables" / f"{args.metric}_by_cell.csv", index=False)
    shown = table[[*factors, "n", "median", "median_low", "median_high", "iqm", "iqm_low", "iqm_high", "ci_note"]]
    doc.p(f"{F.label(args.metric).capitalize()} per cell: median and IQM over seeds with 95% intervals.")
    doc.table(shown)
    if control:
        effects = stats.paired_effects(
            runs, args.metric, factors, control, higher_better=bool(F.higher_better(args.metric))
        )
        effects.to_csv(out / "tables" / f"{args.metric}_paired_effects.csv", index=False)
    stats.divergence_rate(runs, factors).to_csv(out / "tables" / "divergence_rate.csv", index=False)
    runs.to_csv(out / "tables" / "runs.csv", index=False)
    return doc


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            study = load_study(args.studies)
        for w in caught[:20]:
            print(f"warning: {w.message}", file=sys.stderr)
        check_metric(study, args.metric)
        out = args.out or (args.studies[0] / "report" if len(args.studies) == 1 else Path("report"))
        (out / "tables").mkdir(parents=True, exist_ok=True)
        from analysis import plots

        only = args.figures.split(",") if args.figures else None
        unknown = sorted(set(only or []) - set(plots.FIGURES))
        if unknown:
            raise UsageError(f"--figures {','.join(unknown)}: unknown; figures: {', '.join(plots.FIGURES)}")
        formats = tuple(dict.fromkeys(["png", *args.formats.split(",")]))
        options = {"time_to_target": {"metric": args.target_metric, "target": args.target}}
        rendered = plots.make_figures(study, out / "figures", formats=formats, only=only, options=options)
        figures = {name: (png, CAPTIONS.get(name, name)) for name, png in rendered.items()}
        doc = build(study, args, out, figures)
        if rendered.skipped:
            doc.p("Figures not drawn: " + "; ".join(f"{n}: {why}" for n, why in rendered.skipped.items()) + ".")
        md, page = write(doc, out)
    except (StudyError, UsageError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except ValueError as err:  # e.g. a control without pairs, from the statistics
        print(f"error: {str(err).splitlines()[0]}", file=sys.stderr)
        return 2
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
