"""``forest``: the paired effects of the report's findings, one row per comparison (estimate, interval, zero)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

from analysis import findings, stats
from analysis.plots.colours import colouring, factor_name
from analysis.plots.style import GREY, add_legend, set_title
from analysis.plots.tables import FigureSkipped, cell_factors, format_value, result_runs

CONTROLS = (("warmup", "0"), ("skew", "none"), ("warmup_shape", "none"))  # the report's default controls, in order
ROW_IN = 0.34  # height of one comparison, inches


def forest(
    runs: pd.DataFrame,
    history: pd.DataFrame,
    *,
    metric: str = "final_eval_loss",
    control: str | None = None,
    factors: Sequence[str] | None = None,
    colour_by: str | None = None,
) -> Figure:
    """The effect of each treatment cell against its control, paired seed by seed, as the report's findings state
    it (``stats.paired_effects`` on ``metric`` over ``factors``, default: the varying factors but the seed): one row
    per comparison with the mean difference (treatment − control, a marker in the treatment's colour) and its 95%
    bootstrap interval (a bar; an open marker when there is none, e.g. one seed), a line at zero, and on the right
    the verdict read off the interval and the number of paired seeds. ``control`` defaults to the report's
    (``warmup=0``, else ``skew=none``, else ``warmup_shape=none``); FigureSkipped when there is none.
    """
    colour = colouring(runs, colour_by)
    result_runs(runs)  # FigureSkipped when no run has a result
    factors = list(factors) if factors is not None else cell_factors(runs)
    control = control or default_control(runs, factors)
    if control is None:
        raise FigureSkipped("no factor with a natural control (warmup=0, skew=none, warmup_shape=none) varies")
    if metric not in runs:
        raise FigureSkipped(f"no {metric} in the runs table")
    better = findings.higher_better(metric)
    effects = stats.paired_effects(runs, metric, factors, control, higher_better=bool(better))
    if effects.empty:
        raise FigureSkipped(f"no treatment cell to pair with {control}")
    if not (effects["n_pairs"] > 0).any():
        raise FigureSkipped(f"no comparison against {control} has a pair of seeds with a {metric} (diverged runs)")
    factor, _ = stats.parse_control(control)
    others = [f for f in factors if f != factor]
    n = len(effects)
    labels = [row_label(row, factor, others) for _, row in effects.iterrows()]
    width = max(10.0, 7.5 + 0.075 * max(len(label) for label in labels))  # room for the row labels, ~0.075 in a letter
    fig = Figure(figsize=(width, 1.7 + ROW_IN * n), layout="constrained")
    ax = fig.subplots()
    verdicts = []
    for i, (_, row) in enumerate(effects.iterrows()):
        value = row[colour.factor] if colour.factor in effects.columns else None
        color = colour.of(value) if value is not None and value in colour.colors else GREY
        marker = colour.marker(value) if value is not None else "o"
        if row["n_pairs"] == 0:
            verdicts.append("no pair of seeds")
            ax.plot(0, i, marker="|", color=GREY, markersize=10)
            continue
        available = bool(row["ci_available"])
        if available:
            ax.plot([row["mean_diff_low"], row["mean_diff_high"]], [i, i], color=color, linewidth=2.2, zorder=2)
        fill = "full" if available else "none"
        ax.plot(
            row["mean_diff"],
            i,
            marker=marker,
            markersize=7,
            color=color,
            fillstyle=fill,
            zorder=3,
            markeredgecolor=color if not available else "white",
            markeredgewidth=0.8,
        )
        _, word = findings.verdict(row["mean_diff_low"], row["mean_diff_high"], available, better)
        pairs = int(row["n_pairs"])
        verdicts.append(f"{word}, {pairs} seed{'s' if pairs != 1 else ''}")
    ax.axvline(0, color="black", linewidth=1.0, zorder=1)
    low, high = ax.get_xlim()
    margin = 0.08 * (high - low)
    ax.set_xlim(min(low, -margin), max(high, margin))  # zero clear of the frame
    spread = effects[["mean_diff", "mean_diff_low", "mean_diff_high"]].abs().to_numpy(dtype="float64").ravel()
    spread = spread[np.isfinite(spread) & (spread > 0)]
    symlog = len(spread) > 2 and spread.max() > 30 * np.median(spread)
    if symlog:  # one huge effect (a control that failed) would squash every other row into the zero line
        symlog_axis(ax, effects, spread)
    ax.set_yticks(range(n), labels, fontsize="small")
    ax.set_ylabel(f"treatment ({factor}) and its cell", fontsize="small")
    ax.set_ylim(n - 0.5, -0.5)
    ax.grid(True, axis="x", alpha=0.3)
    right = ax.secondary_yaxis("right")  # the verdicts, row by row
    right.set_yticks(range(n), verdicts, fontsize="small")
    right.tick_params(axis="y", length=0)
    ax.tick_params(axis="y", length=0)
    direction = "" if better is None else ("   (→ higher is better)" if better else "   (← lower is better)")
    scale = " (symlog scale)" if symlog else ""
    ax.set_xlabel(f"{findings.label(metric)}: treatment − control{scale}{direction}")
    treated = runs[runs.index.isin(treatments(runs, effects, colour.factor).index)]
    handles: list[Any] = colour.handles(treated, note_status=False, markers=True)
    handles.append(Line2D([], [], color=GREY, linewidth=2.2, label="95% bootstrap CI over paired seeds"))
    handles.append(Line2D([], [], color=GREY, marker="o", fillstyle="none", linestyle="none", label="no interval"))
    add_legend(fig, handles, title=factor_name(colour.factor))
    pairs = effects.loc[effects["n_pairs"] > 0, "n_pairs"]
    low, high = (int(pairs.min()), int(pairs.max())) if len(pairs) else (0, 0)
    count = f"{low}–{high}" if low != high else str(high)
    set_title(
        fig,
        f"Paired effects against {control}: treatment − control; {colour.title}",
        f"mean over {count} seed{'s' if high != 1 else ''} paired seed by seed, bars: 95% bootstrap CI; a diverged run "
        "has no pair",
    )
    return fig


def symlog_axis(ax: Axes, effects: pd.DataFrame, spread: np.ndarray) -> None:
    """A symlog x axis, linear within the smaller effects, with ticks at 0 and every few powers of ten."""
    linear = float(np.quantile(spread, 0.25))
    ax.set_xscale("symlog", linthresh=linear, linscale=0.5)
    values = effects[["mean_diff", "mean_diff_low", "mean_diff_high"]].to_numpy(dtype="float64").ravel()
    values = values[np.isfinite(values)]
    reach = 1.6 * float(spread.max())
    low = -reach if (values < -linear).any() else -linear
    high = reach if (values > linear).any() else linear
    ax.set_xlim(low, high)
    first, last = math.ceil(math.log10(linear)), math.floor(math.log10(reach))
    every = max(1, math.ceil((last - first + 1) / 2))
    powers = [10.0**k for k in range(last, first - 1, -every)]
    ticks = sorted({0.0, *(p for p in powers if p <= high), *(-p for p in powers if -p >= low)})
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())


def treatments(runs: pd.DataFrame, effects: pd.DataFrame, factor: str) -> pd.DataFrame:
    """The runs whose level of ``factor`` appears among the compared treatments (their legend entries)."""
    if factor not in effects.columns or factor not in runs:
        return runs.iloc[:0]
    return runs[runs[factor].isin(effects[factor].dropna().unique())]


def default_control(runs: pd.DataFrame, factors: Sequence[str]) -> str | None:
    """The report's default control: ``warmup=0``, else ``skew=none``, else ``warmup_shape=none``, else None."""
    for factor, value in CONTROLS:
        if factor in factors and value in {format_value(v) for v in runs[factor].dropna()}:
            return f"{factor}={value}"
    return None


def row_label(row: pd.Series, factor: str, others: Sequence[str]) -> str:
    """``"warmup=20 (lr=0.01, optimizer=adam)"``: the treatment, then the cell it is compared in."""
    where = ", ".join(f"{f}={format_value(row[f])}" for f in others)
    return f"{factor}={format_value(row[factor])}" + (f"  ({where})" if where else "")
