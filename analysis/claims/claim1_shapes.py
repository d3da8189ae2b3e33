"""Claim 1: warmup is a low learning rate for the first steps, constant or linearly increased (``warmup-shapes``)."""

from __future__ import annotations

from analysis import verdicts as V
from analysis.claims.common import Verdict, counts_text, quality_runs
from analysis.load import Study


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
