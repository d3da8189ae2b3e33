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
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from analysis import findings as F
from analysis import plots, stats
from analysis import verdicts as V
from analysis.load import Study, load_study

REPO = Path(__file__).resolve().parent.parent
SWEEPS = REPO / "sweeps"
METRIC = "final_eval_loss"
EPOCH_STEPS = 128  # 8192 training examples / batch 64, the default clusters data


def steps_text(value: object) -> str:
    """A step count as written in the grid: ``128``, not ``128.0``."""
    number = float(value)  # type: ignore[arg-type]
    return str(int(number)) if number.is_integer() else str(value)


def effects(runs: pd.DataFrame, factors: list[str], control: str, metric: str) -> pd.DataFrame:
    """Paired effects of ``metric`` against ``control`` (``stats.paired_effects``), measured cells only."""
    table = stats.paired_effects(runs, metric, factors, control, higher_better=bool(F.higher_better(metric)))
    return table[table["n_pairs"] > 0]


@dataclass
class Verdict:
    word: str  # supported, contradicted, not tested, inconclusive; "<word> for <arm>; ..." when arms differ
    because: str  # the numbers the rule was applied to
    regime: str  # whether the control arm reached the regime where the claim can show
    rule: str  # the rule, stated once
    tables: list[tuple[str, pd.DataFrame]] = field(default_factory=list)  # (caption, cell comparisons) to list


def joined(words: dict[str, str]) -> str:
    """One word when every arm agrees, else ``supported for sgd; contradicted for adam``."""
    distinct = set(words.values())
    if len(distinct) == 1:
        return distinct.pop()
    return "; ".join(f"{word} for {arm}" for arm, word in words.items())


def counts_text(verdict: tuple[str, int, int, int], right: str, wrong: str) -> str:
    word, n_right, n_wrong, n_regime = verdict
    return f"{n_right} of {n_regime} in-regime cells {right}, {n_wrong} {wrong}"


def quality_runs(study: Study) -> pd.DataFrame:
    return V.with_quality(study.runs)


# ------------------------------------------------------------------------------------------------ claims
def shapes(studies: list[Study]) -> Verdict:
    """Claim 1: a low-rate start works as warmup whether it is constant or linear (both rescue what no warmup
    loses, where no warmup fails)."""
    study = studies[0]
    runs, factors = quality_runs(study), study.cell_factors
    table = V.compare(runs, factors, "warmup_shape=none")
    others = [f for f in factors if f != "warmup_shape"]
    words = {}
    parts = []
    for shape in ("constant", "linear", "exponential"):
        arm = table[table["warmup_shape"] == shape]
        if arm.empty:
            continue
        found = V.predicts_help(arm)
        words[shape] = found[0]
        parts.append(f"{shape}: {counts_text(found, 'helped', 'did not')}")
    key = {k: words[k] for k in ("constant", "linear") if k in words}
    if any(w == V.NOT_TESTED for w in key.values()):
        word = V.NOT_TESTED
    elif all(w == V.SUPPORTED for w in key.values()):
        word = V.SUPPORTED
    elif any(w == V.CONTRADICTED for w in key.values()):
        word = V.CONTRADICTED
    else:
        word = V.INCONCLUSIVE
    return Verdict(
        word,
        "Against no warmup: " + "; ".join(parts) + ".",
        V.regime_sentence(table, others, "warmup_shape=none"),
        "supported when both constant and linear warmup help (capped loss lower, interval below 0) in at least "
        "half the cells where no warmup fails and are wrong in fewer; contradicted when either is wrong (hurts, or "
        "fails as often as no warmup) in most of them; exponential is reported, not judged.",
        [("each shape against `warmup_shape=none`", table)],
    )


def optimizers(studies: list[Study]) -> Verdict:
    """Claim 2: warmup helps adaptive optimizers (Adam, RMSProp) where they fail without it, and makes little
    difference for plain SGD where SGD fails without it."""
    adaptive_study, sgd_study = studies
    adaptive = V.compare(quality_runs(adaptive_study), adaptive_study.cell_factors, "warmup=0")
    sgd = V.compare(quality_runs(sgd_study), sgd_study.cell_factors, "warmup=0")
    a_others = [f for f in adaptive_study.cell_factors if f != "warmup"]
    s_others = [f for f in sgd_study.cell_factors if f != "warmup"]
    helped = V.predicts_help(V.best_per_cell(adaptive, a_others))  # per rate cell: the best warmup of the grid
    sgd_null = V.predicts_no_help(V.best_per_cell(sgd, s_others))
    because = (
        f"Adaptive (Adam, RMSProp, post-LN Transformer): {counts_text(helped, 'helped by warmup', 'not')}. "
        f"Plain SGD (full-batch gradient descent, curvature testbed): of {sgd_null[3]} in-regime cells, warmup made "
        f"no difference in {sgd_null[1]} (as the claim says) and rescued SGD in {sgd_null[2]}."
    )
    regime = (
        V.regime_sentence(adaptive, a_others, "warmup=0", " (adaptive arm)")
        + " "
        + V.regime_sentence(sgd, s_others, "warmup=0", " (SGD arm)")
    )
    if V.NOT_TESTED in (helped[0], sgd_null[0]):
        word = V.NOT_TESTED
    elif helped[0] == V.SUPPORTED and sgd_null[0] == V.SUPPORTED:
        word = V.SUPPORTED
    elif V.CONTRADICTED in (helped[0], sgd_null[0]):
        word = V.CONTRADICTED
        if sgd_null[0] == V.CONTRADICTED:
            because += " Warmup rescues plain SGD as well: its benefit is not specific to adaptive optimizers."
    else:
        word = V.INCONCLUSIVE
    return Verdict(
        word,
        because,
        regime,
        "per optimizer and rate cell, the best warmup of the grid against no warmup: supported when it helps the "
        "adaptive optimizers in most cells where they fail without warmup and leaves SGD as it is (no help: fails as "
        "often) in most cells where SGD fails without it; contradicted when either half is wrong in most of its "
        "in-regime cells; not tested when either arm never fails without warmup.",
        [("adaptive optimizers: warmup against `warmup=0`", adaptive), ("plain SGD: warmup against `warmup=0`", sgd)],
    )


RELIANCE_REGIME = 0.2  # the no-warmup skewed arm relies on the cue when it costs >= 20 points of accuracy
RELIANCE_NULL = 0.05  # an interval inside +-0.05 is a clear null for a difference in reliance


def with_excess_gap(runs: pd.DataFrame, factors: list[str]) -> pd.DataFrame:
    """``runs`` with ``skew_excess_gap``: the over-fitting gap the skew adds, over the same run without skew.

    For a skewed run ``r`` and its ``skew=none`` twin ``n`` (every other factor and the seed equal, so they see the
    same batches from step ``skew.steps`` on): ``skew_excess_gap(r) = skew_gap_end(r) - skew_gap_end(n)``. NaN for
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


RECOVERY_TOLERANCE = 0.05  # within 5% of the twin's held-out loss = recovered


def recovery_vs_twin(study: Study, tolerance: float = RECOVERY_TOLERANCE) -> pd.Series:
    """Per run (index: ``run``): the first eval step ``s >= skew_end_step`` from which the run's held-out loss stays
    within ``tolerance`` (relative) of its ``skew=none`` twin's at every later common eval step:
    ``|L(s') - L_twin(s')| <= tolerance * L_twin(s')`` for all ``s' >= s``. NaN for unskewed runs, runs without a
    twin and runs that never recover. Unlike the run's own ``rest_recovery_step`` (against its own final value,
    which measures convergence as much as recovery), this asks when the skewed start stops mattering.
    """
    runs, history = study.runs, study.history
    factors = [f for f in study.factors if f not in ("skew", "skew.steps")]
    curves = {
        run: frame.set_index("step")["eval/loss"].dropna()
        for run, frame in history[["run", "step", "eval/loss"]].groupby("run", observed=True)
    }
    twins = runs[runs["skew"] == "none"]
    out = pd.Series(np.nan, index=runs["run"].to_numpy(), dtype="float64")
    for _, row in runs[runs["skew"] != "none"].iterrows():
        match = twins
        for f in factors:
            match = match[stats.equals_value(match[f], row[f])]
        if match.empty or row["run"] not in curves or pd.isna(row.get("skew_end_step")):
            continue
        mine, twin = curves[row["run"]], curves.get(match["run"].iat[0])
        if twin is None:
            continue
        common = mine.index.intersection(twin.index)
        common = common[common >= row["skew_end_step"]]
        close = (mine[common] - twin[common]).abs() <= tolerance * twin[common].abs()
        recovered = np.nan
        for step in reversed(common):
            if not close[step]:
                break
            recovered = float(step)
        out[row["run"]] = recovered
    return out


def skewed_runs(study: Study) -> pd.DataFrame:
    """The skewed runs of a study, with their ``skew_excess_gap`` (``with_excess_gap``) and
    ``recovery_vs_twin_step`` (``recovery_vs_twin``)."""
    runs = with_excess_gap(study.runs, study.factors)
    runs["recovery_vs_twin_step"] = recovery_vs_twin(study).reindex(runs["run"]).to_numpy()
    return runs[runs["skew"] != "none"]


def reliance_cells(skewed: pd.DataFrame, factors: list[str]) -> pd.DataFrame:
    """Per cell (factors other than warmup and skew): the no-warmup arm's mean cue reliance at the end of the skew,
    ``in_regime`` when it is at least RELIANCE_REGIME, and each warmup's paired effect on it with a cell verdict
    (helps: interval below 0; hurts: above 0; no help: inside +-RELIANCE_NULL; unclear otherwise)."""
    table = effects(skewed, factors, "warmup=0", "cue_reliance_end")
    others = [f for f in factors if f not in ("warmup", "skew")]
    control = skewed[skewed["warmup"].astype(str) == "0"]
    base = control.groupby(others)["cue_reliance_end"].mean() if others else control["cue_reliance_end"].mean()
    rows = []
    for _, row in table.iterrows():
        level = (
            float(base.loc[tuple(row[f] for f in others)] if len(others) > 1 else base.loc[row[others[0]]])
            if others
            else float(base)
        )
        low, high = row["mean_diff_low"], row["mean_diff_high"]
        if not bool(row["ci_available"]):
            word = V.UNCLEAR
        elif high < 0:
            word = V.HELPS
        elif low > 0:
            word = V.HURTS
        elif -RELIANCE_NULL <= low and high <= RELIANCE_NULL:
            word = V.NO_HELP
        else:
            word = V.UNCLEAR
        rows.append({**row.to_dict(), "control_reliance": level, "in_regime": level >= RELIANCE_REGIME, "cell": word})
    return pd.DataFrame(rows)


def skew(studies: list[Study]) -> Verdict:
    """Claim 3: under a skewed start, warmup lowers the over-fitting the skew causes (here: reliance on a cue that
    only the skewed start offers); the best ramp is about one epoch."""
    study = studies[0]
    skewed, factors = skewed_runs(study), study.cell_factors
    cells = reliance_cells(skewed, factors)
    in_regime = cells[cells["in_regime"]] if not cells.empty else cells
    right = int((in_regime["cell"] == V.HELPS).sum()) if not cells.empty else 0
    wrong = int(in_regime["cell"].isin([V.HURTS, V.NO_HELP]).sum()) if not cells.empty else 0
    word = V.aggregate(right, wrong, len(in_regime))
    others = [f for f in factors if f not in ("warmup", "skew")]
    because = f"{right} of {len(in_regime)} in-regime (skew length x warmup) cells: warmup lowers the cue reliance; "
    because += f"{wrong} do not (higher, or within +-{RELIANCE_NULL})."
    if not skewed.empty:
        means = skewed.groupby([*others, "warmup"])["cue_reliance_end"].mean().reset_index()
        best = []
        for key, cell in means.groupby(others) if others else [((), means)]:
            if cell["cue_reliance_end"].isna().all():
                continue  # the skew phase never ended (a run shorter than skew.steps): nothing to rank
            top = cell.loc[cell["cue_reliance_end"].idxmin()]
            label = ", ".join(f"{f}={v}" for f, v in zip(others, np.atleast_1d(key), strict=True))
            best.append(f"{label}: W={steps_text(top['warmup'])} ({F.fmt(top['cue_reliance_end'])})")
        because += f" Lowest mean reliance (one epoch = {EPOCH_STEPS} steps): " + "; ".join(best) + "."
        excess = skewed.groupby("warmup")["skew_excess_gap"].mean()
        because += (
            " Gap the skew adds, mean over cells and seeds (nats): "
            + ", ".join(f"W={steps_text(w)}: {F.fmt(v)}" for w, v in excess.items())
            + "."
        )
        recovered = skewed.groupby("warmup")["recovery_vs_twin_step"].agg(["median", "count", "size"])
        because += (
            f" Recovery (held-out loss within {RECOVERY_TOLERANCE:.0%} of the skew=none twin's from then on), median "
            "step: "
            + ", ".join(
                f"W={steps_text(w)}: {F.fmt(r['median']) if r['count'] else 'never'} "
                f"({int(r['count'])}/{int(r['size'])} runs recover)"
                for w, r in recovered.iterrows()
            )
            + "."
        )
    n_cells = len(cells.drop_duplicates(subset=others)) if others and not cells.empty else min(len(cells), 1)
    n_regime = (
        len(in_regime.drop_duplicates(subset=others)) if others and not in_regime.empty else min(len(in_regime), 1)
    )
    regime = (
        f"Regime: the no-warmup skewed arm relies on the cue (mean reliance >= {RELIANCE_REGIME}) in {n_regime} of "
        f"{n_cells} skew lengths" + ("; reached." if n_regime else "; not reached, so the claim cannot show here.")
    )
    table = cells.rename(columns={"cell": "verdict"}) if not cells.empty else cells
    if not table.empty:
        table["text"] = [
            f"reliance {F.fmt(r['mean_diff'])} [{F.fmt(r['mean_diff_low'])}, {F.fmt(r['mean_diff_high'])}] against "
            f"W=0 (W=0 mean reliance {F.fmt(r['control_reliance'])})"
            for _, r in table.iterrows()
        ]
    return Verdict(
        word,
        because,
        regime,
        "per skew length where the no-warmup arm relies on the cue, each warmup's paired effect on the reliance at "
        "the end of the skew (eval/early/acc - eval/cue_flipped/acc): supported when warmup lowers it (interval "
        "below 0) in most such cells, contradicted when it raises it or leaves it within +-0.05 in most.",
        [("cue reliance at the end of the skew: warmup against `warmup=0`", table)],
    )


def lr_range(studies: list[Study]) -> Verdict:
    """Claim 4a: warmup widens the range of learning rates that train (lr*(W) > lr*(0)), per optimizer."""
    from analysis import regime as R

    study = studies[0]
    lr_col = "lr_scale" if "lr_scale" in study.factors else "lr"
    by = [f for f in study.cell_factors if f not in (lr_col, "warmup", "lr")]
    ratios = R.stable_lr_ratio(study.runs, lr_col=lr_col, by=by)
    stable = R.stable_lr(study.runs, lr_col=lr_col, by=by).all_seeds
    words: dict[str, str] = {}
    parts = []
    regimes = []
    for key, cell in ratios.groupby(by) if by else [("all", ratios)]:
        arm = ", ".join(str(v) for v in np.atleast_1d(key))
        base = stable
        for f, v in zip(by, np.atleast_1d(key), strict=True):
            base = base[base[f] == v]
        zero = base[base["warmup"].astype(str) == "0"]
        censored = bool(zero["censored"].iat[0]) if "censored" in zero and len(zero) else True
        regimes.append(
            f"{arm}: "
            + (
                "no warmup trains on the whole grid (not reached)"
                if censored
                else f"no warmup fails above {lr_col}={F.fmt(float(zero['lr_star'].iat[0]))}"
            )
        )
        texts = [
            f"W={r['warmup']}: x{F.fmt(r['ratio'])} [{F.fmt(r['ratio_low'])}, {F.fmt(r['ratio_high'])}]"
            for _, r in cell.iterrows()
        ]
        parts.append(f"{arm}: lr*(W)/lr*(0) " + "; ".join(texts))
        if censored:
            words[arm] = V.NOT_TESTED
        elif (cell["ratio_low"] > 1).any():
            words[arm] = V.SUPPORTED
        elif (cell["ratio_high"] <= 1).all():
            words[arm] = V.CONTRADICTED
        else:
            words[arm] = V.INCONCLUSIVE
    sensitivity = R.lr_sensitivity(study.runs, lr_col=lr_col, by=by)
    sens = [
        f"{', '.join(str(r[f]) for f in by)} W={r['warmup']}: {F.fmt(r['sensitivity'])} "
        f"[{F.fmt(r['sensitivity_low'])}, {F.fmt(r['sensitivity_high'])}]"
        for _, r in sensitivity.iterrows()
    ]
    because = "; ".join(parts) + ". LR sensitivity (Wortsman et al. 2023; lower = flatter): " + "; ".join(sens) + "."
    return Verdict(
        joined(words),
        because,
        "Regime: " + "; ".join(regimes) + ".",
        "per optimizer, lr*(W) is the largest rate of the sqrt(2) grid up to which a seed trains; supported when some "
        "warmup's geometric-mean ratio lr*(W)/lr*(0) over seeds has its 95% interval above 1, contradicted when every "
        "warmup's interval is at or below 1, not tested when no warmup fails nowhere on the grid.",
    )


def layernorm(studies: list[Study]) -> Verdict:
    """Claim 4b: post-LN Transformers need warmup with Adam (it rescues them where they fail without it); pre-LN
    ones do not (they train without warmup at the same rates)."""
    study = studies[0]
    runs, factors = quality_runs(study), study.cell_factors
    table = V.compare(runs, factors, "warmup=0")
    norm = "model.norm_position"
    post, pre = table[table[norm] == "post"], table[table[norm] == "pre"]
    helped = V.predicts_help(post)
    failing_rates = set(post.loc[post["in_regime"], "lr"]) if "lr" in post else set()
    pre_there = pre[pre["lr"].isin(failing_rates)] if "lr" in pre else pre
    pre_fails = int(pre_there["in_regime"].sum())
    because = f"Post-LN: {counts_text(helped, 'rescued by warmup', 'not')}. "
    because += f"Pre-LN without warmup at those rates: fails in {pre_fails} of {len(pre_there)} cells."
    others = [f for f in factors if f != "warmup"]
    if helped[0] == V.NOT_TESTED:
        word = V.NOT_TESTED
    elif helped[0] == V.SUPPORTED and pre_fails == 0:
        word = V.SUPPORTED
    elif helped[0] == V.CONTRADICTED or (len(pre_there) and 2 * pre_fails > len(pre_there)):
        word = V.CONTRADICTED
    else:
        word = V.INCONCLUSIVE
    return Verdict(
        word,
        because,
        V.regime_sentence(table, others, "warmup=0"),
        "supported when warmup helps post-LN in most cells where post-LN fails without it, and pre-LN trains "
        "without warmup at those rates; contradicted when warmup does not help post-LN there, or pre-LN fails "
        "without warmup as well in most of them.",
        [("warmup against `warmup=0`, per norm position and rate", table)],
    )


def rule(studies: list[Study]) -> Verdict:
    """Claim 4c: the untuned rule W = 2/(1-beta2) rescues Adam where it fails without warmup and does as well as
    the best W of the grid; RAdam without warmup does as well as Adam with the rule."""
    study = studies[0]
    runs = quality_runs(study)
    beta2 = (
        float(pd.to_numeric(runs.get("optimizer.beta2"), errors="coerce").dropna().iloc[0])
        if "optimizer.beta2" in runs
        else RULE_BETA2
    )
    rule_w = str(math.ceil(2 / (1 - beta2) - 1e-9))
    runs["warmup"] = [str(w) if str(w) != "auto" else rule_w for w in runs["warmup_steps"].astype(int)]
    warmup = runs["warmup"].astype(str)
    is_adam, is_radam = runs["optimizer"] == "adam", runs["optimizer"] == "radam"
    table = V.compare(runs[is_adam], ["warmup"], "warmup=0")
    adam = table.set_index(table["warmup"].astype(str))
    if rule_w not in adam.index:
        raise ValueError(f"claim 4c: no Adam runs with the rule's warmup={rule_w} in {runs['study'].iat[0]}")
    rule_row = adam.loc[rule_w]
    best = str(adam["mean_diff"].idxmin())
    vs_best = arms_effect(runs, is_adam & (warmup == rule_w), is_adam & (warmup == best)) if best != rule_w else None
    radam_vs_rule = arms_effect(runs, is_radam & (warmup == "0"), is_adam & (warmup == rule_w))
    because = "Adam against warmup=0: " + "; ".join(f"W={w}: {r['verdict']} ({r['text']})" for w, r in adam.iterrows())
    because += f". The best W of the grid is {best}"
    rule_worse = vs_best is not None and bool(vs_best["ci_available"]) and vs_best["mean_diff_low"] > 0
    if vs_best is not None:
        because += f"; the rule's W={rule_w} against it: {interval_text(vs_best)}"
    radam_word = V.INCONCLUSIVE
    if radam_vs_rule is not None:
        because += f". RAdam without warmup against Adam with the rule: {interval_text(radam_vs_rule)}"
        if bool(radam_vs_rule["ci_available"]):
            radam_word = (
                V.CONTRADICTED
                if radam_vs_rule["mean_diff_low"] > 0
                else V.SUPPORTED
                if radam_vs_rule["mean_diff_high"] <= 0.05
                else V.INCONCLUSIVE
            )
    in_regime = bool(rule_row["in_regime"])
    if not in_regime:
        word = V.NOT_TESTED
    elif rule_row["verdict"] == V.HELPS and not rule_worse:
        word = V.SUPPORTED
    elif rule_row["verdict"] in (V.HURTS, V.NO_HELP) or rule_worse:
        word = V.CONTRADICTED
    else:
        word = V.INCONCLUSIVE
    if word != V.NOT_TESTED:
        word = joined({"the rule": word, "RAdam": radam_word})
    regime = V.regime_sentence(table, [], "warmup=0", " (Adam)")
    return Verdict(
        word,
        because + ".",
        regime,
        "the rule: supported when Adam with W = 2/(1-beta2) beats no warmup (capped loss, interval below 0) and is not "
        "clearly worse than the best W of the grid; contradicted when it does not help or is clearly worse than the "
        "best W. RAdam: supported when RAdam without warmup is not worse than Adam with the rule by more than 0.05 "
        "(interval's upper end), contradicted when clearly worse.",
        [("Adam: each warmup against `warmup=0`", table)],
    )


def budget(studies: list[Study]) -> Verdict:
    """Claim 4d: where warmup helps, the same learning-rate budget without a ramp (flat) does not."""
    study = studies[0]
    runs, factors = quality_runs(study), study.cell_factors
    table = V.compare(runs, factors, "warmup_shape=none")
    others = [f for f in factors if f != "warmup_shape"]
    in_regime = table[table["in_regime"]]
    linear = in_regime[in_regime["warmup_shape"] == "linear"].set_index(others)["verdict"] if others else None
    flat = in_regime[in_regime["warmup_shape"] == "flat"].set_index(others)["verdict"] if others else None
    if linear is None or flat is None:
        raise ValueError("claim 4d needs a factor besides warmup_shape (e.g. the rate)")
    helps = linear[linear == V.HELPS].index
    flat_there = flat.reindex(helps)
    right = int(flat_there.isin([V.NO_HELP, V.HURTS]).sum())
    wrong = int((flat_there == V.HELPS).sum())
    word = V.aggregate(right, wrong, len(helps)) if len(in_regime) else V.NOT_TESTED
    because = (
        f"Where no warmup fails ({len(linear)} cells), linear warmup helps in {len(helps)}; in those the flat, "
        f"area-matched control gives no help in {right} and helps in {wrong}."
    )
    if len(in_regime) and not len(helps):
        because += " Linear warmup helps nowhere here, so there is no benefit to explain."
    return Verdict(
        word,
        because,
        V.regime_sentence(table, others, "warmup_shape=none"),
        "in cells where no warmup fails and linear warmup helps: supported when the flat control (same budget, no "
        "ramp) does not help in most of them, contradicted when it helps too; not tested when no warmup never fails "
        "or linear warmup never helps.",
        [("each shape against `warmup_shape=none`", table)],
    )


RULE_BETA2 = 0.98  # optimizer.beta2 in sweeps/warmup-rule.yaml


def interval_text(row: pd.Series) -> str:
    return f"{F.fmt(row['mean_diff'])} [{F.fmt(row['mean_diff_low'])}, {F.fmt(row['mean_diff_high'])}]"


def arms_effect(runs: pd.DataFrame, treatment: pd.Series, control: pd.Series) -> pd.Series | None:
    """The paired effect (seed by seed) on capped loss of the runs selected by ``treatment`` against ``control``."""
    arms = pd.concat([runs[treatment].assign(arm="treatment"), runs[control].assign(arm="control")])
    table = stats.paired_effects(arms, V.QUALITY, ["arm"], "arm=control", higher_better=False)
    table = table[table["n_pairs"] > 0]
    return None if table.empty else table.iloc[0]


@dataclass
class Claim:
    key: str
    title: str
    studies: list[str]
    figures: list[str]
    judge: Callable[[list[Study]], Verdict]
    regime_figures: bool = False  # the lr x warmup phase diagram and sensitivity curves (analysis.regime_plots)
    previous: str = ""  # the verdict of the 2026-11-27 findings and why its study could not be trusted


CLAIMS = [
    Claim(
        "1",
        "Warmup is a low learning rate for the first steps, constant or linearly increased",
        ["warmup-shapes"],
        ["convergence", "lr_schedule"],
        shapes,
        previous="no clear effect, from Adam on the MLP at its tuned rate and 10x, where no warmup never failed",
    ),
    Claim(
        "2",
        "Warmup exists for adaptive optimizers; with plain SGD it makes little sense",
        ["warmup-optimizers", "warmup-sgd"],
        ["convergence", "mechanism"],
        optimizers,
        previous="contradicted, from the MLP at tuned and 10x rates, where the adaptive optimizers never failed "
        "without warmup (and runs at chance counted as completed)",
    ),
    Claim(
        "3",
        "Warmup reduces early over-fitting to a skewed start; the ramp should be about one epoch",
        ["warmup-skew"],
        ["early_overfitting"],
        skew,
        previous="contradicted, from a cue too weak to be relied on (strength 3) that stayed in the data all run, "
        "with one skew length",
    ),
    Claim(
        "4a",
        "Warmup lets training tolerate larger learning rates",
        ["warmup-lr-range"],
        [],
        lr_range,
        regime_figures=True,
        previous="depends on, from a ~3.2x grid and 'every seed completed' (runs at chance counted as successes)",
    ),
    Claim(
        "4b",
        "Post-layer-norm Transformers need warmup with Adam; pre-layer-norm ones do not",
        ["warmup-layernorm"],
        ["convergence"],
        layernorm,
        previous="contradicted, from Adam at 1e-3 and 3e-3, where post-LN trains without warmup",
    ),
    Claim(
        "4c",
        "The untuned rule W = 2/(1-beta2) against RAdam against a tuned warmup",
        ["warmup-rule"],
        ["convergence"],
        rule,
        previous="no clear effect, from the MLP at 10x its tuned rate, where Adam never failed without warmup",
    ),
    Claim(
        "4d",
        "Warmup's benefit is not just a smaller learning-rate budget",
        ["warmup-budget"],
        ["convergence"],
        budget,
        previous="no clear effect, from the MLP, where warmup did not help in the first place",
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


def section(claim: Claim, studies: list[Study], docs: Path) -> tuple[list[str], Verdict]:
    verdict = claim.judge(studies)
    out = [f"## Claim {claim.key}: {claim.title}", ""]
    for name, study in zip(claim.studies, studies, strict=True):
        comment = [line[2:] for line in (SWEEPS / f"{name}.yaml").read_text().splitlines() if line.startswith("# ")]
        out += [f"**Study** `sweeps/{name}.yaml` ({len(study.runs)} runs): " + " ".join(comment[1:]), ""]
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
        "**How a verdict is reached** (`analysis/verdicts.py`). Each run has an *outcome* beside its status: "
        "`trained`, `untrained` (finished, but its final held-out loss and accuracy are not clearly better than "
        "predicting the class frequencies, or the mean) or `diverged` (`ablate/outcome.py`). Runs are compared on "
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
        text, verdict = section(claim, [load_study(studies / name) for name in claim.studies], docs)
        sections += text
        before = claim.previous.split(",")[0]
        summary.append(f"| {claim.key}: {claim.title} | {names} | {reached(verdict)} | **{verdict.word}** | {before} |")
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
            for name in claim.studies:
                ran[name] = run_study(name)
        times = {name: seconds for name, seconds in ran.items() if seconds is not None}
        for name, seconds in times.items():
            record_time(name, seconds)
    print(f"wrote {write_findings(args.docs, args.studies)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
