"""Writing ``docs/findings.md``: one section per claim (its studies, regime, verdict with the rule, figures,
outcome counts and the cell comparisons the verdict was computed from), the tuning table, a summary and the
measured wall times (``docs/generated/wall_times.yaml``). Nothing in it is written by hand for an outcome."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analysis import findings as F
from analysis import plots
from analysis import verdicts as V
from analysis.claims import wall_times
from analysis.claims.catalog import CLAIMS, STUDIES, SWEEPS, Claim
from analysis.claims.common import Verdict, steps_text
from analysis.load import Study, load_study


def cell_lines(caption: str, table: pd.DataFrame) -> list[str]:
    """The cell comparisons of a verdict, in-regime cells first, one line each."""
    if table is None or table.empty:
        return [f"{caption}: no paired cells.", ""]
    keys = [c for c in table.columns if c not in _TABLE_COLUMNS]
    lines = [f"{caption} (in the regime: the control arm fails; outside it: reported, not counted):", ""]
    for in_regime in (True, False):
        for _, row in table[table["in_regime"] == in_regime].iterrows():
            where = F.cell_text(row, keys)
            lines.append(
                f"- {'**in regime**' if in_regime else 'outside'} · {where}: **{row['verdict']}** ({row['text']})."
            )
    return lines + [""]


_TABLE_COLUMNS = (
    "in_regime", "control_trained", "control_runs", "trained", "runs", "mean_diff", "mean_diff_low", "mean_diff_high",
    "n_pairs", "verdict", "text", "control", "n_unpaired", "p_improvement", "p_improvement_low", "p_improvement_high",
    "ci_available", "ci_note", "control_reliance", "study",
)  # fmt: skip


def outcome_table(study: Study) -> list[str]:
    """Outcome counts per cell: trained / untrained / diverged / failed of the seeds."""
    runs = V.with_quality(study.runs)
    factors = study.cell_factors
    lines = ["| " + " | ".join([*factors, "trained", "untrained", "diverged", "failed"]) + " |"]
    lines.append("|" + " --- |" * (len(factors) + 4))
    groups = runs.groupby(factors, sort=True, dropna=False) if factors else [((), runs)]
    for key, cell in groups:
        values = [steps_text(v) if isinstance(v, float) and v.is_integer() else F.fmt(v) if isinstance(v, float)
                  else str(v) for v in np.atleast_1d(key)] if factors else []  # fmt: skip
        counts = [int((cell["outcome"] == o).sum()) for o in ("trained", "untrained", "diverged")]
        counts.append(int((cell["status"] == "failed").sum()))
        lines.append("| " + " | ".join([*values, *map(str, counts)]) + " |")
    return lines + [""]


def section(
    claim: Claim, studies: list[Study], docs: Path, times: dict[str, dict[str, Any]]
) -> tuple[list[str], Verdict]:
    """A claim's section and its verdict; ``times``: the measured wall times (``wall_times.load``)."""
    verdict = claim.judge(studies)
    out = [f"## Claim {claim.key}: {claim.title}", ""]
    for name, study in zip(claim.studies, studies, strict=True):
        comment = [line[2:] for line in (SWEEPS / f"{name}.yaml").read_text().splitlines() if line.startswith("# ")]
        measured = wall_times.measured_text(name, times)
        about = comment[1:] + ([f"Measured: {measured}"] if measured else [])
        out += [f"**Study** `sweeps/{name}.yaml` ({len(study.runs)} runs): " + " ".join(about), ""]
    out += [f"**{verdict.regime}**", ""]
    out += [f"**Verdict: {verdict.word}.** {verdict.because}", ""]
    out += [f"*Rule:* {verdict.rule}", ""]
    if claim.previous:
        out += [f"*Before (2026-11-27):* {claim.previous}.", ""]
    for name, study in zip(claim.studies, studies, strict=True):
        rendered = plots.make_figures(study, docs / "figures" / name, formats=("png",), only=claim.figures)
        for figure, png in rendered.items():
            out += [f"![{name}: {figure}]({png.relative_to(docs).as_posix()})", ""]
        if claim.regime_figures:
            out += regime_figures(study, docs / "figures" / name, docs)
        out += [f"Outcomes per cell of `{name}` (seeds):", ""] + outcome_table(study)
    for caption, table in verdict.tables:
        out += cell_lines(caption, table)
    return out, verdict


def regime_figures(study: Study, out_dir: Path, docs: Path) -> list[str]:
    """The lr x warmup phase diagram and the sensitivity curves of a study, saved as PNGs; their markdown."""
    from analysis import regime_plots

    lr_col = "lr_scale" if "lr_scale" in study.factors else "lr"
    by = [f for f in study.cell_factors if f not in (lr_col, "warmup", "lr")]
    lines = []
    for name, draw in (
        ("phase_diagram", regime_plots.phase_diagram),
        ("sensitivity_curves", regime_plots.sensitivity_curves),
    ):
        fig = draw(study.runs, lr_col=lr_col, by=by)
        png = plots.save(fig, out_dir / name, formats=("png",))[0]
        lines += [f"![{study.runs['study'].iat[0]}: {name}]({png.relative_to(docs).as_posix()})", ""]
    return lines


def reached(verdict: Verdict) -> str:
    """Whether the claim's regime was reached: "not tested" is exactly "regime not reached" (per arm)."""
    arms = verdict.word.split("; ")
    missed = sum(V.NOT_TESTED in arm for arm in arms)
    return "reached" if missed == 0 else "not reached" if missed == len(arms) else "partly reached"


def write_findings(docs: Path, studies: Path = STUDIES) -> Path:
    """Write ``docs/findings.md`` (and its figures under ``docs/figures/``) from the studies in ``studies``."""
    docs.mkdir(exist_ok=True)
    shutil.rmtree(docs / "figures", ignore_errors=True)
    lines = [
        "# What ablate measured: the warmup claims, tested",
        "",
        "Generated by `python -m analysis.claims` from the studies in `sweeps/` (run on a 2-core CPU VM). Every "
        "number and verdict below is computed from the run records; rerunning the command regenerates this file. "
        "Effects are paired seed by seed against the control and reported with 95% percentile bootstrap intervals; "
        "a verdict's rule is stated next to it.",
        "",
        "**How a verdict is reached** (`analysis/verdicts.py`). Each run has an *outcome* beside its status: "
        "`trained`, `untrained` (finished, but its final held-out loss and accuracy are not clearly better than "
        "predicting the class frequencies, or the mean) or `diverged` (`ablate/run/outcome.py`). Runs are compared on "
        "their final held-out loss capped at that chance loss, a diverged run counting at the cap, so a run that "
        "learned nothing never passes for a success and a rescued run is never dropped from a pair. A claim is "
        "judged only in the cells where its control arm (no warmup) *fails* (at least half its seeds untrained or "
        "diverged): the *regime*, stated first in every section. Verdicts have four outcomes: **supported**, "
        "**contradicted**, **not tested** (regime not reached: no arm fails without warmup) and **inconclusive** "
        "(the intervals cover zero); a claim with two arms that come out differently gets one word per arm.",
        "",
        "**Caveats.** Small models (an MLP on Gaussian clusters or regressing a random teacher network; a 6-block "
        "Transformer on a sorting task) on CPU, a few hundred to a thousand steps: these are the claims' mechanisms "
        "at toy scale, not evidence about large models. Five seeds per cell; an interval covering zero means this "
        "study cannot tell, not that there is no effect.",
        "",
    ]
    times = wall_times.load()
    tuned = load_study(studies / "lr-tuning")
    from analysis.tune import tuned_rates

    lines += ["## Tuning: the well-tuned learning rates", ""]
    lines += ["| optimizer | tuned lr | median final held-out loss | grid |", "| --- | --- | --- | --- |"]
    for r in tuned_rates(tuned.runs).itertuples():
        lines.append(
            f"| {r.optimizer} | {r.tuned_lr:g}{' (grid edge)' if r.at_edge else ''} | "
            f"{r.median_final_eval_loss:.4f} | {r.grid} |"
        )
    lines.append("")
    summary = ["## Summary", "", "| claim | studies | regime | verdict | before (2026-11-27) |"]
    summary.append("| --- | --- | --- | --- | --- |")
    sections: list[str] = []
    for claim in CLAIMS:
        names = ", ".join(f"`{name}`" for name in claim.studies)
        missing = [name for name in claim.studies if not (studies / name).exists()]
        if missing:
            sections += [f"## Claim {claim.key}: {claim.title}", "", f"Not run yet: {', '.join(missing)}.", ""]
            summary.append(f"| {claim.key}: {claim.title} | {names} | | not run yet | {claim.previous.split(',')[0]} |")
            continue
        text, verdict = section(claim, [load_study(studies / name) for name in claim.studies], docs, times)
        sections += text
        before = claim.previous.split(",")[0]
        summary.append(f"| {claim.key}: {claim.title} | {names} | {reached(verdict)} | **{verdict.word}** | {before} |")
    lines += summary + [""] + sections
    measured = {
        path.stem: wall_times.measured_text(path.stem, times) or "not measured yet"
        for path in sorted(SWEEPS.glob("*.yaml"))
    }
    lines += [f"## Wall times (measured when each study ran, recorded in `{wall_times.WALL_TIMES_PATH}`)", ""]
    lines += [
        "`python -m analysis.claims` runs each study with `hydra/launcher=stacked` (docs/stacking.md): runs that "
        "share a model and data train as one batched model; runs with probes on train alone.",
        "",
    ]
    lines += ["| study | wall time |", "| --- | --- |"] + [f"| `{k}` | {v} |" for k, v in measured.items()] + [""]
    out = docs / "findings.md"
    out.write_text("\n".join(lines))
    return out
