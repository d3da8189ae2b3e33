"""``sensitivity``: final held-out loss (every seed counted, diverged at a cap) and the seeds that did not train,
against peak learning rate, one line per level of the colour factor."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from analysis import stats
from analysis.plots.colours import Colouring, colouring
from analysis.plots.curves import use_log_scale
from analysis.plots.style import GREY, PANEL_SIZE_IN, add_legend, draw_interval_bars, set_log_x_at, set_log_y, set_title
from analysis.plots.tables import (
    LR_FACTORS,
    FigureSkipped,
    Panel,
    format_value,
    grid,
    numeric_column,
    panel_factors,
    result_runs,
    rows_matching,
    seeds_count,
    seeds_per_cell,
    split_panels,
)

X_NAMES = {
    "lr": "peak learning rate",
    "lr_scale": "lr scale",
    "lr_sharpness_multiple": "lr as a multiple of 2/sharpness",
}


def sensitivity(
    runs: pd.DataFrame, history: pd.DataFrame, *, metric: str = "final_eval_loss", colour_by: str | None = None
) -> Figure:
    """Final held-out loss and the seeds that did not train against peak learning rate, one line per colour level.

    Does warmup widen the range of usable learning rates? Top: ``metric`` (default ``final_eval_loss``) with
    every seed counted: a loss is capped at the run's chance loss (``chance_loss``; where a record has none, its
    initial held-out loss) and a diverged run counts at the cap, the convention of ``analysis.verdicts``'
    ``capped_loss`` (a median over survivors alone would favour the rates where most seeds diverged); median over
    seeds with its 95% percentile bootstrap interval (``stats.aggregate``), an x where every seed diverged. A
    metric that is not a loss has no cap: its median is over the seeds that did not diverge, and the label says
    so. Bottom: per level, whether its seeds trained (outcome ``trained``) at each rate: a filled marker when
    none did, open when all did, half-filled with ``k/n`` when some did not (``not_trained_rate``). x: the learning
    rate (``lr``; else ``lr_scale`` or ``lr_sharpness_multiple``, whichever varies), log scale. One panel per
    optimizer (x other varying factors); raises FigureSkipped when no panel has two learning rates.
    """
    colour = colouring(runs, colour_by, exclude=LR_FACTORS)
    usable = result_runs(runs)
    factors = panel_factors(usable, colour.factor, exclude=LR_FACTORS)
    x_col = next((c for c in LR_FACTORS if any(p.runs[c].nunique() > 1 for p in panels_of(usable, factors, c))), None)
    if x_col is None:
        raise FigureSkipped("learning rate does not vary within an optimizer: no sensitivity curve")
    panels = [p for p in split_panels(usable, factors) if p.runs[x_col].nunique() > 1]
    values, caps, capped_at = capped_metric(usable, history, metric)
    table = usable.assign(_value=values, _diverged=(usable["status"] == "diverged").astype(int))
    by = [*factors, colour.factor, x_col]
    summary = stats.aggregate(table, "_value", by)
    summary = summary.merge(table.groupby(by, dropna=False, observed=True)["_diverged"].sum().reset_index(), on=by)
    failing = not_trained_rate(usable, by)
    n_rows, n_cols = grid(panels, [])  # balanced: the optimizers side by side
    fig = Figure(figsize=(PANEL_SIZE_IN[0] * n_cols + 2.8, PANEL_SIZE_IN[1] * 1.7 * n_rows + 1.0), layout="constrained")
    levels = len(colour.levels())
    axes = fig.subplots(2 * n_rows, n_cols, squeeze=False, height_ratios=[2.0, 0.35 + 0.22 * levels] * n_rows)
    for ax in axes.ravel():
        ax.set_axis_off()
    offsets = dodge(usable[x_col], levels)
    for panel in panels:
        top, bottom = axes[2 * panel.row, panel.col], axes[2 * panel.row + 1, panel.col]
        top.set_axis_on()
        bottom.set_axis_on()
        bottom.sharex(top)
        in_panel = rows_matching(summary, panel.key)
        for rank, value, _ in colour.groups(panel.runs):
            cell = summary[in_panel & colour.mask(summary, value)].sort_values(x_col)
            x = cell[x_col].to_numpy(dtype="float64") * offsets[rank]
            color, marker = colour.of(value), colour.marker(value)
            draw_interval_bars(top, x, cell, color)
            top.plot(
                x,
                cell["median"],
                color=color,
                linewidth=1.5,
                marker=marker,
                markersize=5,
                zorder=3,
                markeredgecolor="white",
                markeredgewidth=0.6,
            )
            every = (cell["_diverged"] == cell["n_runs"]).to_numpy() & (cell["n_runs"] > 0).to_numpy()
            if every.any():  # (an empty line would break constrained layout on a second draw)
                top.plot(
                    x[every],
                    cell["median"][every],
                    linestyle="none",
                    marker="x",
                    markersize=8,
                    markeredgewidth=2,
                    color=color,
                    zorder=4,
                )
        in_caps = caps[usable.index.isin(panel.runs.index)]
        if capped_at and np.isfinite(in_caps).any():
            top.axhline(float(np.nanmedian(in_caps)), color="#777777", linestyle=":", linewidth=1.2, zorder=1)
        draw_not_trained(bottom, failing[rows_matching(failing, panel.key)], panel, colour, x_col, offsets)
        set_log_x_at(bottom, panel.runs[x_col])
        top.tick_params(labelbottom=False)
        if use_log_scale([summary.loc[in_panel, "median"].to_numpy(dtype="float64", na_value=np.nan)]):
            set_log_y(top)
        top.set_title(panel.title, fontsize="medium")
        top.grid(True, alpha=0.3)
        bottom.grid(True, axis="x", alpha=0.3)
        bottom.set_xlabel(f"{X_NAMES.get(x_col, x_col)} (log scale)")
        if panel.col == 0:
            top.set_ylabel(y_label(metric, capped_at), fontsize="small")
            bottom.set_ylabel("trained?", fontsize="small")
    handles: list[Any] = colour.handles(usable, note_status=False, markers=True)
    if (table.groupby(by, dropna=False, observed=True)["_diverged"].mean() == 1).any():
        handles.append(
            Line2D([], [], color=GREY, marker="x", linestyle="none", markersize=8, label="every seed diverged")
        )
    if capped_at:
        handles.append(Line2D([], [], color="#777777", linestyle=":", label=f"cap: {capped_at}"))
    handles += [
        Line2D([], [], color=GREY, marker="o", linestyle="none", fillstyle="none", label="every seed trained"),
        Line2D([], [], color=GREY, marker="o", linestyle="none", fillstyle="left", label="k/n seeds did not train"),
        Line2D([], [], color=GREY, marker="o", linestyle="none", label="no seed trained"),
    ]
    add_legend(fig, handles, title=colour.name)
    several = seeds_per_cell(usable, by)[1] > 1
    counted = "every seed (a diverged run counts at the cap)" if capped_at else "the seeds that did not diverge"
    how = f"{seeds_count(usable, by)} per cell; "
    how += f"median of {counted}, bars: 95% bootstrap CI" if several else "the one seed's value"
    set_title(fig, f"Learning-rate sensitivity; {colour.title}", how)
    return fig


def panels_of(runs: pd.DataFrame, factors: Sequence[str], x_col: str) -> list[Panel]:
    return split_panels(runs, factors) if x_col in runs else []


def capped_metric(runs: pd.DataFrame, history: pd.DataFrame, metric: str) -> tuple[np.ndarray, np.ndarray, str]:
    """``metric`` per run with every run counted, each run's cap, and what the cap is ("" when there is none).

    A loss is capped at the run's ``chance_loss`` (where a record has none: its first held-out loss, the loss at
    initialisation), and a diverged run or one without a finite value counts at the cap. Other metrics: as they
    are, NaN for a diverged run.
    """
    values = numeric_column(runs, metric).to_numpy()
    none = np.full(len(runs), np.nan)
    if not metric.endswith("loss"):
        return values, none, ""
    cap = numeric_column(runs, "chance_loss")
    what = "chance loss"
    if cap.isna().any() and "eval/loss" in history:
        logged = history.dropna(subset=["eval/loss"]).sort_values("step")
        first = logged.groupby(["study", "run"], observed=True)["eval/loss"].first()
        keys = pd.MultiIndex.from_arrays([runs["study"].astype(str), runs["run"].astype(str)])
        first.index = pd.MultiIndex.from_arrays([first.index.get_level_values(i).astype(str) for i in (0, 1)])
        initial = pd.Series(first.reindex(keys).to_numpy(dtype="float64"), index=runs.index)
        what = "initial loss" if cap.isna().all() else "chance loss (else the initial loss)"
        cap = cap.fillna(initial)
    caps = cap.to_numpy(dtype="float64")
    if not np.isfinite(caps).any():
        return values, none, ""
    return np.where(np.isfinite(values), np.fmin(values, caps), caps), caps, what


def y_label(metric: str, capped_at: str) -> str:
    names = {"final_eval_loss": "final held-out loss", "final_eval_acc": "final held-out accuracy"}
    name = names.get(metric, metric.replace("_", " "))
    if capped_at:
        return f"{name} (nats),\ncapped at {capped_at}; diverged = cap"
    return f"{name}\n(seeds that did not diverge)"


def draw_not_trained(
    ax: Axes, rates: pd.DataFrame, panel: Panel, colour: Colouring, x_col: str, offsets: dict[int, float]
) -> None:
    """The strip under a sensitivity panel: a row per colour level, a marker per rate (open: every seed trained,
    filled: none, half: some, with ``k/n`` above it)."""
    shown = [(rank, value) for rank, value, _ in colour.groups(panel.runs)][::-1]
    for row, (rank, value) in enumerate(shown):
        cell = rates[colour.mask(rates, value)].sort_values(x_col)
        x = cell[x_col].to_numpy(dtype="float64") * offsets[rank]
        share = cell["rate"].to_numpy(dtype="float64")
        for fill, where in (("none", share == 0), ("left", (share > 0) & (share < 1)), ("full", share >= 1)):
            if where.any():
                ax.plot(
                    x[where],
                    np.full(where.sum(), row),
                    linestyle="none",
                    marker=colour.marker(value),
                    markersize=6,
                    color=colour.of(value),
                    fillstyle=fill,
                    markeredgewidth=1.2,
                )
        for xi, (_, r) in zip(x, cell.iterrows(), strict=True):
            if 0 < r["rate"] < 1:
                ax.annotate(
                    f"{r['n_not_trained']}/{r['n_runs']}",
                    (xi, row),
                    textcoords="offset points",
                    xytext=(0, 5),
                    ha="center",
                    va="bottom",
                    fontsize=6.5,
                    color=colour.of(value),
                )
    ax.set_yticks(range(len(shown)), [format_value(v) for _, v in shown], fontsize="x-small")
    ax.set_ylim(len(shown) - 0.4, -0.7)  # the control on top, room above each row for its k/n
    ax.tick_params(axis="y", length=0)


def not_trained_rate(runs: pd.DataFrame, by: Sequence[str]) -> pd.DataFrame:
    """Per cell of ``by``: ``n_runs``, ``n_not_trained`` (outcome ``untrained`` or ``diverged``; records without an
    outcome: diverged ones) and ``rate = n_not_trained / n_runs``."""
    if "outcome" in runs and runs["outcome"].notna().any():
        failed = runs["outcome"].astype("object") != "trained"
    else:
        failed = runs["status"] == "diverged"
    frame = runs.assign(_failed=failed.to_numpy())
    grouped = frame.groupby(list(by), dropna=False, observed=True)["_failed"].agg(["sum", "count"]).reset_index()
    grouped = grouped.rename(columns={"sum": "n_not_trained", "count": "n_runs"})
    grouped["n_not_trained"] = grouped["n_not_trained"].astype(int)
    grouped["rate"] = grouped["n_not_trained"] / grouped["n_runs"]
    return grouped


def dodge(x: pd.Series, levels: int, share: float = 0.4) -> dict[int, float]:
    """Multiplicative x offsets per level rank (log axis) that keep the levels' points apart: together they span
    ``share`` of the narrowest gap between neighbouring rates, at most 0.08 decades."""
    rates = np.unique(pd.to_numeric(x, errors="coerce").dropna().to_numpy(dtype="float64"))
    rates = rates[rates > 0]
    gap = float(np.diff(np.log10(rates)).min()) if len(rates) > 1 else 0.3
    step = min(0.08, share * gap) / max(levels - 1, 1)
    return {rank: float(10 ** (step * (rank - (levels - 1) / 2))) for rank in range(levels)}
