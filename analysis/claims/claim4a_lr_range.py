"""Claim 4a: warmup lets training tolerate larger learning rates (``warmup-lr-range``)."""

from __future__ import annotations

import numpy as np

from analysis import findings as F
from analysis import verdicts as V
from analysis.claims.common import Verdict, joined
from analysis.load import Study


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
