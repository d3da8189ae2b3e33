"""Claim 3: warmup reduces early over-fitting to a skewed start; the ramp should be about one epoch
(``warmup-skew``). Over-fitting here is reliance on a label cue that only the skewed start offers; the module also
measures the gap the skew adds over each run's ``skew=none`` twin and when the run recovers against that twin."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis import findings as F
from analysis import stats
from analysis import verdicts as V
from analysis.claims.common import Verdict, steps_text
from analysis.load import Study

EPOCH_STEPS = 128  # 8192 training examples / batch 64, the default clusters data


def effects(runs: pd.DataFrame, factors: list[str], control: str, metric: str) -> pd.DataFrame:
    """Paired effects of ``metric`` against ``control`` (``stats.paired_effects``), measured cells only."""
    table = stats.paired_effects(runs, metric, factors, control, higher_better=bool(F.higher_better(metric)))
    return table[table["n_pairs"] > 0]


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
