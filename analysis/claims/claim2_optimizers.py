"""Claim 2: warmup exists for adaptive optimizers; with plain SGD it makes little sense (``warmup-optimizers``,
``warmup-sgd``)."""

from __future__ import annotations

from analysis import verdicts as V
from analysis.claims.common import Verdict, counts_text, quality_runs
from analysis.load import Study


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
