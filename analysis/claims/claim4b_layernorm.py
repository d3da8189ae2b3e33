"""Claim 4b: post-layer-norm Transformers need warmup with Adam; pre-layer-norm ones do not (``warmup-layernorm``)."""

from __future__ import annotations

from analysis import verdicts as V
from analysis.claims.common import Verdict, counts_text, quality_runs
from analysis.load import Study


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
