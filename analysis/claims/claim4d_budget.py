"""Claim 4d: warmup's benefit is not just a smaller learning-rate budget (``warmup-budget``)."""

from __future__ import annotations

from analysis import verdicts as V
from analysis.claims.common import Verdict, quality_runs
from analysis.load import Study


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
