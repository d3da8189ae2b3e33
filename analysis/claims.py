"""``python -m analysis.claims``: run the named studies and write ``docs/findings.md``, one section per claim.

    python -m analysis.claims                 # run every study in sweeps/ (resuming), tune, analyse, write docs/
    python -m analysis.claims --no-run        # only analyse the studies already in outputs/studies/

Order: ``lr-tuning`` first, then ``python -m analysis.tune --write`` (the "well-tuned" rates of the other
studies), then every claim's study. Each study's wall time is measured and written into its file's
``# Measured:`` line. For each claim the section says what was measured, shows the figures (copied to
``docs/figures/``), lists the paired comparisons (effect, 95% interval, seeds) and gives a verdict computed from
them by the rule written next to it: nothing in the document is written by hand for a particular outcome.
"""

from __future__ import annotations

import argparse
import math
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from analysis import findings as F
from analysis import plots, stats
from analysis.load import Study, load_study

REPO = Path(__file__).resolve().parent.parent
SWEEPS = REPO / "sweeps"
METRIC = "final_eval_loss"
EPOCH_STEPS = 128  # 8192 training examples / batch 64, the default clusters data


@dataclass
class Verdict:
    word: str  # supported, contradicted, no clear effect, depends on
    because: str  # the rule applied to the numbers, in one or two sentences


def effects(runs: pd.DataFrame, factors: list[str], control: str, metric: str = METRIC) -> pd.DataFrame:
    """Paired effects with a ``verdict`` column (better / worse / no clear difference / no interval)."""
    table = stats.paired_effects(runs, metric, factors, control, higher_better=bool(F.higher_better(metric)))
    table["verdict"] = [
        F.verdict(lo, hi, bool(ok), F.higher_better(metric))[1]
        for lo, hi, ok in zip(table["mean_diff_low"], table["mean_diff_high"], table["ci_available"], strict=True)
    ]
    return table[table["n_pairs"] > 0]


def share(table: pd.DataFrame, word: str) -> str:
    return f"{int((table['verdict'] == word).sum())} of {len(table)}"


def by_majority(table: pd.DataFrame) -> str:
    """The verdict of a claim that predicts "better" in every cell of ``table``, by the cells' verdicts:
    supported when better cells outnumber worse ones and are at least half; contradicted when worse cells
    outnumber better ones and are at least half; no clear effect when fewer than half the cells differ either
    way (or no cell was measured); else depends on."""
    better, worse, n = int((table["verdict"] == "better").sum()), int((table["verdict"] == "worse").sum()), len(table)
    if n == 0:
        return "no clear effect"  # nothing measured: nothing shown
    if better > worse and 2 * better >= n:
        return "supported"
    if worse > better and 2 * worse >= n:
        return "contradicted"
    if 2 * (better + worse) < n:
        return "no clear effect"
    return "depends on"


# ------------------------------------------------------------------------------------------------ claims
def shapes(study: Study) -> Verdict:
    """Claim 1: does a low-rate start (any shape) beat no warmup, and do constant and linear behave alike?"""
    runs, factors = study.runs, study.cell_factors
    vs_none = effects(runs, factors, "warmup_shape=none")
    vs_linear = effects(runs[runs["warmup_shape"] != "none"], factors, "warmup_shape=linear")
    helps = vs_none[vs_none["verdict"] == "better"]
    because = (
        f"Against no warmup, {share(vs_none, 'better')} shape x rate cells are better and {share(vs_none, 'worse')} "
        f"worse; against linear warmup, {share(vs_linear, 'no clear difference')} cells show no clear difference."
    )
    word = by_majority(vs_none)
    if helps.empty:
        because += " No shape improves on no warmup here: the low start makes no measurable difference."
    else:
        scales = sorted(set(helps["lr_scale"])) if "lr_scale" in helps else []
        because += f" Shapes help at lr_scale {', '.join(map(str, scales))}."
    return Verdict(word, because + " (Rule: majority of the shape x rate cells against no warmup.)")


def where_text(row: pd.Series) -> str:
    """``W=100 at 10x`` (or ``W=100`` without an ``lr_scale`` factor): a warmup cell in a few words."""
    scale = f" at {row['lr_scale']:g}x" if "lr_scale" in row and pd.notna(row["lr_scale"]) else ""
    return f"W={row['warmup']}{scale}"


def optimizers(study: Study) -> Verdict:
    """Claim 2: warmup helps adaptive optimizers (adam, rmsprop) and makes little difference for plain SGD."""
    table = effects(study.runs, study.cell_factors, "warmup=0")
    helped = {
        opt: bool((table[(table["optimizer"] == opt)]["verdict"] == "better").any())
        for opt in sorted(set(table["optimizer"]))
    }
    adaptive = [o for o in ("adam", "rmsprop") if o in helped]
    plain = [o for o in ("sgd",) if o in helped]
    better = table[table["verdict"] == "better"]
    where = [
        f"{opt} ({', '.join(where_text(row) for _, row in cells.iterrows())})"
        for opt, cells in better.groupby("optimizer")
    ]
    because = "Warmup beats no warmup for: " + ("; ".join(where) or "no optimizer")
    because += f" (cells better: {share(table, 'better')}; worse: {share(table, 'worse')})."
    if all(helped[o] for o in adaptive) and not any(helped[o] for o in plain):
        return Verdict("supported", because + " Adaptive optimizers gain, plain SGD does not.")
    if not any(helped[o] for o in adaptive):
        return Verdict("contradicted", because + " The adaptive optimizers do not gain from warmup here.")
    return Verdict("depends on", because + " The gain is not specific to adaptive optimizers.")


def with_excess_gap(runs: pd.DataFrame, factors: list[str]) -> pd.DataFrame:
    """``runs`` with ``skew_excess_gap``: the over-fitting gap the skew adds, over the same run without skew.

    For a skewed run ``r`` and its ``skew=none`` twin ``n`` (every other factor and the seed equal, so they see the
    same batches from step ``skew.steps`` on): ``skew_excess_gap(r) = skew_gap_end(r) - skew_gap_end(n)``. The
    gap alone also measures how far training has got by the end of the skew phase (a slower start leaves a larger
    gap between any two groups, skew or not); the difference keeps only what the skewed order did. NaN for
    ``skew=none`` runs and for runs without a usable twin. ``factors``: the study's varying factors with the seed.
    """
    factors = [f for f in factors if f != "skew"]
    twins = runs[runs["skew"] == "none"].set_index(factors)["skew_gap_end"]
    twins = twins[~twins.index.duplicated()]
    keys = pd.MultiIndex.from_frame(runs[factors]) if len(factors) > 1 else pd.Index(runs[factors[0]])
    twin_gap = twins.reindex(keys).to_numpy(dtype="float64", na_value=float("nan"))
    out = runs.copy()
    out["skew_excess_gap"] = runs["skew_gap_end"].to_numpy(dtype="float64", na_value=float("nan")) - twin_gap
    out.loc[out["skew"] == "none", "skew_excess_gap"] = float("nan")
    return out


def skewed_runs(study: Study) -> pd.DataFrame:
    """The skewed runs of a study, with their ``skew_excess_gap`` (``with_excess_gap``)."""
    runs = with_excess_gap(study.runs, study.factors)
    return runs[runs["skew"] != "none"]


def skew(study: Study) -> Verdict:
    """Claim 3: under a skewed start, warmup lowers the over-fitting the skew causes; the best length is ~1 epoch.

    Measured by ``skew_excess_gap`` (``with_excess_gap``) paired against ``warmup=0`` seed by seed: a difference
    in differences, ``(gap_skewed - gap_none)_W - (gap_skewed - gap_none)_0``.
    """
    skewed, factors = skewed_runs(study), study.cell_factors
    excess = effects(skewed, factors, "warmup=0", "skew_excess_gap")
    raw = effects(skewed, factors, "warmup=0", "skew_gap_end")
    added = stats.aggregate(skewed, "skew_excess_gap", ["warmup"]) if not skewed.empty else pd.DataFrame()
    because = (
        f"Against no warmup, warmup lowers the gap the skew adds in {share(excess, 'better')} skewed cells and raises "
        f"it in {share(excess, 'worse')} (the raw gap at the end of the skew phase: lower in {share(raw, 'better')}, "
        f"higher in {share(raw, 'worse')})."
    )
    if not added.empty and added["mean"].notna().any():
        because += " Gap the skew adds (nats, mean over optimizers, skews and seeds): " + "; ".join(
            f"warmup={r['warmup']}: {F.fmt(r['mean'])} [{F.fmt(r['mean_low'])}, {F.fmt(r['mean_high'])}]"
            for _, r in added.iterrows()
        )
        best = added.loc[added["mean"].idxmin(), "warmup"]
        because += f"; smallest at warmup={best} (one epoch = {EPOCH_STEPS} steps)."
    return Verdict(by_majority(excess), because + " (Rule: majority of the skewed cells, on the added gap.)")


def lr_range(study: Study) -> Verdict:
    """Claim 4a: the largest learning rate at which every seed completes grows with warmup."""
    runs = study.runs
    rows = []
    for (opt, warmup), cell in runs.groupby(["optimizer", "warmup"]):
        ok = cell.groupby("lr_scale")["status"].apply(lambda s: bool((s == "completed").all()))
        rows.append(
            {"optimizer": opt, "warmup": warmup, "max_ok": max((x for x, good in ok.items() if good), default=0)}
        )
    table = pd.DataFrame(rows)
    widened: list[str] = []
    narrowed: list[str] = []
    for opt, t in table.groupby("optimizer"):
        base, best = t[t["warmup"] == 0]["max_ok"].max(), t[t["warmup"] > 0]["max_ok"].max()
        if best > base:
            widened.append(str(opt))
        elif best < base:
            narrowed.append(str(opt))
    because = (
        "Largest lr_scale at which every seed completed: "
        + "; ".join(f"{r.optimizer} warmup={r.warmup}: {r.max_ok:g}x" for r in table.itertuples())
        + "."
    )
    rule_text = " (Rule: per optimizer, does some warmup complete at a larger lr_scale than no warmup?)"
    if len(widened) == table["optimizer"].nunique():
        return Verdict("supported", because + rule_text)
    if len(narrowed) == table["optimizer"].nunique():
        return Verdict("contradicted", because + " Warmup narrows the range for every optimizer." + rule_text)
    if narrowed and not widened:
        return Verdict(
            "no clear effect",
            because + f" Warmup narrows the range for {', '.join(narrowed)} and leaves it for the others." + rule_text,
        )
    if not widened:
        return Verdict("no clear effect", because + " The grid does not show a wider range with warmup." + rule_text)
    return Verdict("depends on", because + f" Warmup widens the range for {', '.join(widened)} only." + rule_text)


def layernorm(study: Study) -> Verdict:
    """Claim 4b: warmup helps post-LN Transformers (better somewhere) and not pre-LN ones (never better)."""
    table = effects(study.runs, study.cell_factors, "warmup=0")
    norm = "model.norm_position"
    post = table[table[norm] == "post"]
    pre = table[table[norm] == "pre"]
    because = (
        f"Warmup beats no warmup in {share(post, 'better')} post-LN cells and {share(pre, 'better')} pre-LN cells "
        f"(worse: {share(post, 'worse')} post-LN, {share(pre, 'worse')} pre-LN)."
    )
    post_gains, pre_gains = (post["verdict"] == "better").any(), (pre["verdict"] == "better").any()
    if post_gains and not pre_gains:
        return Verdict("supported", because)
    if not post_gains:
        return Verdict("contradicted", because + " Post-LN does not gain from warmup at these rates.")
    return Verdict("depends on", because + " Both norm positions gain from warmup here.")


RULE_BETA2 = 0.99  # optimizer.beta2 in sweeps/warmup-rule.yaml
RULE_WARMUP = math.ceil(2 / (1 - RULE_BETA2))  # warmup=auto there: W = ceil(2 / (1 - beta2)) = 200


def interval_text(row: pd.Series) -> str:
    return f"{F.fmt(row['mean_diff'])} [{F.fmt(row['mean_diff_low'])}, {F.fmt(row['mean_diff_high'])}]"


def arms_effect(runs: pd.DataFrame, treatment: pd.Series, control: pd.Series) -> pd.Series | None:
    """The paired effect (seed by seed) of the runs selected by ``treatment`` against those selected by ``control``."""
    arms = pd.concat([runs[treatment].assign(arm="treatment"), runs[control].assign(arm="control")])
    table = effects(arms, ["arm"], "arm=control")
    return None if table.empty else table.iloc[0]


def rule(study: Study) -> Verdict:
    """Claim 4c: the untuned rule W = 2/(1-beta2) does as well as the best W of the grid (the tuned warmup) and
    better than no warmup; RAdam without warmup does as well as Adam with the rule.

    Rule: supported when Adam with the rule is better than without warmup and not worse than with the best W;
    contradicted when it is worse than the best W and not better than no warmup; else depends on.
    """
    runs = study.runs
    warmup = runs["warmup"].astype(str)
    table = effects(runs, study.cell_factors, "warmup=0")
    adam = table[table["optimizer"] == "adam"]
    adam = adam.set_index(adam["warmup"].astype(str))
    if str(RULE_WARMUP) not in adam.index:
        raise ValueError(f"claim 4c: no Adam runs with the rule's warmup={RULE_WARMUP} in {study.runs['study'].iat[0]}")
    because = "Adam against warmup=0: " + "; ".join(f"warmup={w}: {interval_text(r)}" for w, r in adam.iterrows())
    best = str(adam["mean_diff"].idxmin())
    is_adam, is_radam = runs["optimizer"] == "adam", runs["optimizer"] == "radam"
    rule_runs = is_adam & (warmup == str(RULE_WARMUP))
    rule_vs_none = adam.loc[str(RULE_WARMUP), "verdict"]
    rule_vs_best = arms_effect(runs, rule_runs, is_adam & (warmup == best)) if best != str(RULE_WARMUP) else None
    because += f". The best W of the grid is {best}"
    if rule_vs_best is not None:
        because += f"; the rule's W={RULE_WARMUP} against it: {interval_text(rule_vs_best)} ({rule_vs_best['verdict']})"
    radam_vs_rule = arms_effect(runs, is_radam & (warmup == "0"), rule_runs)
    if radam_vs_rule is not None:
        because += (
            f". RAdam without warmup against Adam with the rule: {interval_text(radam_vs_rule)} "
            f"({radam_vs_rule['verdict']})"
        )
    because += (
        ". (Rule: supported when the rule beats no warmup and is not worse than the best W; contradicted when it is "
        "worse than the best W and no better than no warmup.)"
    )
    rule_worse = rule_vs_best is not None and rule_vs_best["verdict"] == "worse"
    if rule_vs_none == "better" and not rule_worse:
        return Verdict("supported", because)
    if rule_worse and rule_vs_none != "better":
        return Verdict("contradicted", because)
    if rule_worse:
        return Verdict("depends on", because + " The rule helps, but the best W of the grid helps more.")
    return Verdict("no clear effect", because + " Neither difference is clear.")


def budget(study: Study) -> Verdict:
    """Claim 4d: is warmup's gain the ramp, or the smaller learning-rate budget (flat, same area, no ramp)?"""
    runs, factors = study.runs, study.cell_factors
    table = effects(runs, factors, "warmup_shape=none")
    others = [f for f in factors if f != "warmup_shape"]
    linear = table[table["warmup_shape"] == "linear"].set_index(others)["verdict"]
    flat = table[table["warmup_shape"] == "flat"].set_index(others)["verdict"].reindex(linear.index)
    because = (
        f"Linear warmup beats no warmup in {int((linear == 'better').sum())} of {len(linear)} cells; the flat "
        f"area-matched control in {int((flat == 'better').sum())} of {len(flat)}."
    )
    because += " (Rule: where linear warmup helps, does the flat control help too?)"
    helps = linear == "better"
    if helps.any() and not (flat[helps] == "better").any():
        return Verdict("supported", because + " Where warmup helps, the same budget without a ramp does not.")
    if helps.any() and (flat[helps] == "better").all():
        return Verdict("contradicted", because + " Where warmup helps, the flat control helps too: it is the budget.")
    if helps.any():
        return Verdict("depends on", because + " The flat control matches warmup's gain in some of those cells only.")
    because += " Warmup does not help here, so there is no gain to explain."
    flat_only = flat[flat == "better"]
    if not flat_only.empty:
        cells = [F.cell_text(dict(zip(others, np.atleast_1d(key), strict=True)), others) for key in flat_only.index]
        because += f" The smaller budget alone (flat) helps in {len(flat_only)} cell(s): {'; '.join(cells)}."
    return Verdict("no clear effect", because)


@dataclass
class Claim:
    key: str
    title: str
    study: str
    metric: str
    control: str
    figures: list[str]
    judge: Callable[[Study], Verdict]
    # the runs whose paired comparisons the section lists (default: all of them, as loaded)
    derive: Callable[[Study], pd.DataFrame] = lambda study: study.runs


CLAIMS = [
    Claim(
        "1",
        "Warmup is a low learning rate for the first steps, constant or linearly increased",
        "warmup-shapes",
        METRIC,
        "warmup_shape=none",
        ["convergence", "lr_schedule"],
        shapes,
    ),
    Claim(
        "2",
        "Warmup exists for adaptive optimizers; with plain SGD it makes little sense",
        "warmup-optimizers",
        METRIC,
        "warmup=0",
        ["convergence", "mechanism"],
        optimizers,
    ),
    Claim(
        "3",
        "Warmup reduces early over-fitting to a skewed start; the ramp should be about one epoch",
        "warmup-skew",
        "skew_excess_gap",
        "warmup=0",
        ["early_overfitting"],
        skew,
        skewed_runs,
    ),
    Claim(
        "4a",
        "Warmup lets training tolerate larger learning rates",
        "warmup-lr-range",
        METRIC,
        "warmup=0",
        ["sensitivity", "mechanism"],
        lr_range,
    ),
    Claim(
        "4b",
        "Post-layer-norm Transformers need warmup with Adam; pre-layer-norm ones do not",
        "warmup-layernorm",
        METRIC,
        "warmup=0",
        ["convergence"],
        layernorm,
    ),
    Claim(
        "4c",
        "The untuned rule W = 2/(1-beta2) against RAdam against a tuned warmup",
        "warmup-rule",
        METRIC,
        "warmup=0",
        ["convergence"],
        rule,
    ),
    Claim(
        "4d",
        "Warmup's benefit is not just a smaller learning-rate budget",
        "warmup-budget",
        METRIC,
        "warmup_shape=none",
        ["convergence"],
        budget,
    ),
]


# ------------------------------------------------------------------------------------------- running
def run_study(name: str) -> float | None:
    """``python -m ablate -m +sweep=<name>`` (resuming); its wall time in seconds, None if nothing had to run."""
    tic = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "ablate", "-m", f"+sweep={name}", "tracker=local", "tracker.progress=off"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - tic
    tail = done.stderr.strip().splitlines()[-3:]
    print(f"{name}: {seconds / 60:.1f} min; " + " | ".join(tail), flush=True)
    if done.returncode not in (0, 1):  # 1: some run failed, recorded; anything else: the study did not run
        raise SystemExit(f"study {name} did not run: {done.stderr[-2000:]}")
    return None if "; 0 to run" in done.stderr else seconds  # a resumed, finished study measures nothing


def record_time(name: str, seconds: float) -> None:
    """Write ``# Measured: ...`` into the study's file (replacing an earlier measurement)."""
    path = SWEEPS / f"{name}.yaml"
    text = re.sub(r"^# Measured:.*\n", "", path.read_text(), flags=re.MULTILINE)
    line = f"# Measured: {seconds / 60:.1f} min wall time on a 2-core CPU VM ({time.strftime('%Y-%m-%d')}).\n"
    text = text.replace("\nstudy:", f"\n{line}study:", 1)
    path.write_text(text)


# ------------------------------------------------------------------------------------------- writing
def section(claim: Claim, study: Study, docs: Path) -> tuple[list[str], Verdict]:
    verdict = claim.judge(study)
    out = [f"## Claim {claim.key}: {claim.title}", ""]
    comment = [line[2:] for line in (SWEEPS / f"{claim.study}.yaml").read_text().splitlines() if line.startswith("# ")]
    out += [f"**Study** `sweeps/{claim.study}.yaml` ({len(study.runs)} runs): " + " ".join(comment[1:]), ""]
    out += [f"**Verdict: {verdict.word}.** {verdict.because}", ""]
    rendered = plots.make_figures(study, docs / "figures" / claim.study, formats=("png",), only=claim.figures)
    for name, png in rendered.items():
        out += [f"![{claim.study}: {name}]({png.relative_to(docs).as_posix()})", ""]
    found = F.effect_findings(claim.derive(study), claim.metric, study.cell_factors, claim.control)
    counts = {w: sum(f.verdict == w for f in found) for w in ("better", "worse", "no clear difference")}
    out += [
        f"Paired comparisons against `{claim.control}` ({F.label(claim.metric)}; "
        + ", ".join(f"{n} {w}" for w, n in counts.items())
        + "):",
        "",
    ]
    out += [f"- {f.text}" for f in found] + [""]
    return out, verdict


def measured_line(path: Path) -> str:
    """The ``# Measured: ...`` note of a study file, or "not measured yet"."""
    found = re.search(r"^# Measured: (.*)$", path.read_text(), flags=re.MULTILINE)
    return found.group(1) if found else "not measured yet"


def write_findings(docs: Path, studies: Path = REPO / "outputs" / "studies") -> Path:
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
        "**Caveats.** Small models (a 2-layer MLP on Gaussian clusters, 1000 steps; for claim 4b a 6-block "
        "Transformer on a sorting task, 400 steps) on CPU: these are the claims' "
        "mechanisms at toy scale, not evidence about large models. Seeds are few (3-5); an interval covering zero "
        "means this study cannot tell, not that there is no effect. The well-tuned rates come from "
        "`sweeps/lr-tuning.yaml` at warmup=0, which favours no warmup at the tuned rate by construction.",
        "",
    ]
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
    summary = ["## Summary", "", "| claim | study | verdict |", "| --- | --- | --- |"]
    sections: list[str] = []
    for claim in CLAIMS:
        path = studies / claim.study
        if not path.exists():
            sections += [f"## Claim {claim.key}: {claim.title}", "", "Not run yet.", ""]
            summary.append(f"| {claim.key}: {claim.title} | `{claim.study}` | not run yet |")
            continue
        text, verdict = section(claim, load_study(path), docs)
        sections += text
        summary.append(f"| {claim.key}: {claim.title} | `{claim.study}` | **{verdict.word}** |")
    lines += summary + [""] + sections
    measured = {path.stem: measured_line(path) for path in sorted(SWEEPS.glob("*.yaml"))}
    lines += ["## Wall times (measured when each study ran, recorded in its file)", ""]
    lines += ["| study | wall time |", "| --- | --- |"] + [f"| `{k}` | {v} |" for k, v in measured.items()] + [""]
    out = docs / "findings.md"
    out.write_text("\n".join(lines))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m analysis.claims", description=__doc__.split("\n")[0])
    parser.add_argument("--no-run", action="store_true", help="analyse the existing studies only")
    parser.add_argument("--docs", type=Path, default=REPO / "docs")
    parser.add_argument("--studies", type=Path, default=REPO / "outputs" / "studies", help="where the studies are")
    args = parser.parse_args(argv)
    times: dict[str, float] = {}
    if not args.no_run:
        ran = {"lr-tuning": run_study("lr-tuning")}
        subprocess.run(
            [sys.executable, "-m", "analysis.tune", "outputs/studies/lr-tuning", "--write"], cwd=REPO, check=True
        )
        for claim in CLAIMS:
            ran[claim.study] = run_study(claim.study)
        times = {name: seconds for name, seconds in ran.items() if seconds is not None}
        for name, seconds in times.items():
            record_time(name, seconds)
    print(f"wrote {write_findings(args.docs, args.studies)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
