"""Claim 4c: the untuned rule W = 2/(1-beta2) against RAdam against a tuned warmup (``warmup-rule``)."""

from __future__ import annotations

import math

import pandas as pd

from analysis import findings as F
from analysis import stats
from analysis import verdicts as V
from analysis.claims.common import Verdict, joined, quality_runs
from analysis.load import Study

RULE_BETA2 = 0.98  # optimizer.beta2 in sweeps/warmup-rule.yaml


def interval_text(row: pd.Series) -> str:
    return f"{F.fmt(row['mean_diff'])} [{F.fmt(row['mean_diff_low'])}, {F.fmt(row['mean_diff_high'])}]"


def arms_effect(runs: pd.DataFrame, treatment: pd.Series, control: pd.Series) -> pd.Series | None:
    """The paired effect (seed by seed) on capped loss of the runs selected by ``treatment`` against ``control``."""
    arms = pd.concat([runs[treatment].assign(arm="treatment"), runs[control].assign(arm="control")])
    table = stats.paired_effects(arms, V.QUALITY, ["arm"], "arm=control", higher_better=False)
    table = table[table["n_pairs"] > 0]
    return None if table.empty else table.iloc[0]


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
