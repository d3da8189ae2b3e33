"""``early_overfitting``: held-out loss of the early (skew-favoured) group against the rest, and the early
over-fitting measures against warmup length."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure, SubFigure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from analysis import stats
from analysis.plots.colours import MARKERS, Colouring, factor_name
from analysis.plots.curves import has_data, loss_ceiling, metric_curves, seed_summary, use_log_scale
from analysis.plots.step_panels import finish_panel, step_panels
from analysis.plots.style import (
    GREY,
    PANEL_SIZE_IN,
    add_legend,
    draw_interval_bars,
    end_of_warmup_handle,
    note_in_panel,
    set_log_y,
    set_loss_limits,
    set_title,
)
from analysis.plots.tables import (
    FigureSkipped,
    Panel,
    cell_factors,
    format_value,
    numeric_column,
    rows_matching,
    seeds_phrase,
)

EARLY_SUMMARIES = (
    ("skew_gap_end", "gap at end of skew phase (nats)", "rest − early held-out loss at the end of the skew phase"),
    ("rest_recovery_step", "recovery step (steps)", "first step the rest group's loss stays near its final value"),
    ("cue_reliance_end", "cue reliance (accuracy)", "early acc − cue-flipped acc at the end of the skew phase"),
)


def early_overfitting(
    runs: pd.DataFrame, history: pd.DataFrame, *, through_steps: float | None = None, colour_by: str | None = None
) -> Figure:
    """Held-out loss of the early group against the rest, and the early over-fitting measures, by colour level.

    Top: ``eval/early/loss`` (solid) and ``eval/rest/loss`` (dashed), median over seeds, through
    ``through_steps`` (default: twice the end of the skew phase, ``skew_end_step``); the skew phase is shaded.
    Bottom: ``skew_gap_end``, ``rest_recovery_step`` and, when some run measured it (``skew=spurious``),
    ``cue_reliance_end`` against warmup length: median over seeds with its 95% percentile bootstrap interval
    (``stats.aggregate``). One encoding per variable: colour is the colour factor, the marker is the cell (a
    panel of the top row), and no line joins points (a line would join different colours).
    """
    layout = step_panels(runs, colour_by)
    colour, usable, factors, panels = layout.colour, layout.runs, layout.factors, layout.panels
    if "skew" not in usable or usable["skew"].isin(["none"]).all():
        raise FigureSkipped(
            "no data skew (skew=none in every run): early over-fitting needs skew=cluster|spurious|sorted"
        )
    if not has_data(history, "eval/early/loss") or not has_data(history, "eval/rest/loss"):
        raise FigureSkipped("no group-wise held-out loss (eval/early/loss, eval/rest/loss) in the history")
    skew_end = numeric_column(usable, "skew_end_step")
    if through_steps is None:
        through_steps = 2 * float(skew_end.max()) if skew_end.notna().any() else None
    summaries = [s for s in EARLY_SUMMARIES if s[0] in usable and usable[s[0]].notna().any()]
    top_rows, top_cols = layout.n_rows, layout.n_cols
    n_cols = max(top_cols, len(summaries))
    size = (PANEL_SIZE_IN[0] * max(n_cols, 2) + 2.8, PANEL_SIZE_IN[1] * (top_rows + 1) + 1.2 + 0.4 * top_rows)
    fig = Figure(figsize=size, layout="constrained")
    subfigures = fig.subfigures(2, 1, squeeze=False, height_ratios=[top_rows + 0.4, 1.5])
    top_fig, bottom_fig = subfigures[0, 0], subfigures[1, 0]
    axes = top_fig.subplots(top_rows, top_cols, sharex=True, sharey=True, squeeze=False)
    early = metric_curves(usable, history, "eval/early/loss", through_steps)
    rest = metric_curves(usable, history, "eval/rest/loss", through_steps)
    drawn: list[np.ndarray] = []
    for panel in panels:
        ax = axes[panel.row, panel.col]
        in_panel = usable.index.isin(panel.runs.index)
        end = numeric_column(panel.runs, "skew_end_step").median()
        if np.isfinite(end) and end > 0:
            ax.axvspan(0, end, color="#dddddd", alpha=0.6, linewidth=0)
        for rank, value, _ in colour.groups(panel.runs):
            mask = in_panel & colour.mask(usable, value)
            color, z = colour.of(value), colour.zorder(rank)
            drawn += [seed_summary(early.of(mask))[0], seed_summary(rest.of(mask))[0]]
            ax.plot(early.steps, drawn[-2], color=color, linewidth=1.8, zorder=z)
            ax.plot(rest.steps, drawn[-1], color=color, linewidth=1.4, linestyle="--", zorder=z)
        finish_panel(ax, panel, colour, x_max=through_steps)
    last = max([float(c.steps.max()) for c in (early, rest) if len(c.steps)], default=np.nan)
    layout.finish_axes(axes, last, "held-out loss (nats)")
    top = loss_ceiling(drawn, [])  # a diverging run's exploding loss does not flatten the others
    shown = drawn if top is None else [np.fmin(values, top) for values in drawn]
    if use_log_scale(shown):
        set_log_y(axes[0, 0])
    set_loss_limits(axes[0, 0], shown, top)
    handles: list[Any] = colour.handles(usable)
    handles += [
        Line2D([], [], color=GREY, linewidth=1.8, label="early group (eval/early/loss)"),
        Line2D([], [], color=GREY, linewidth=1.4, linestyle="--", label="rest (eval/rest/loss)"),
        Patch(color="#dddddd", label="skew phase (early window)"),
        end_of_warmup_handle(),
    ]
    add_legend(top_fig, handles, title=colour.name)
    phrase = seeds_phrase(usable, cell_factors(usable), None)
    set_title(top_fig, f"Held-out loss of the early (skew-favoured) group vs the rest; {colour.title}", phrase)
    draw_early_summaries(bottom_fig, usable, factors, panels, summaries, colour)
    return fig


def draw_early_summaries(
    fig: SubFigure,
    usable: pd.DataFrame,
    factors: list[str],
    panels: list[Panel],
    summaries: Sequence[tuple[str, str, str]],
    colour: Colouring,
) -> None:
    """The bottom row of ``early_overfitting``: each summary measure against warmup length (or the colour factor
    when warmup does not vary); colour: the colour factor, marker: the cell (panel), bars under the points."""
    if not summaries:
        note_in_panel(fig.subplots(), "no early over-fitting measures in the runs table")
        return
    axes = np.atleast_1d(fig.subplots(1, len(summaries), squeeze=False)[0])
    x_factor = "warmup" if "warmup" in usable and usable["warmup"].nunique() > 1 else colour.factor
    positions = {v: i for i, v in enumerate(sorted(usable[x_factor].dropna().unique()))}
    by = list(dict.fromkeys([*factors, colour.factor, x_factor]))
    combos = [(i, rank, value) for i, p in enumerate(panels) for rank, value, _ in list(colour.groups(p.runs))[::-1]]
    spread = min(0.12, 0.7 / max(len(combos), 1))
    for ax, (column, y_label, meaning) in zip(axes, summaries, strict=True):
        table = stats.aggregate(usable, column, by)
        for k, (index, _, value) in enumerate(combos):
            rows = table[rows_matching(table, panels[index].key) & colour.mask(table, value)].sort_values(x_factor)
            x = rows[x_factor].map(positions).to_numpy(dtype="float64") + spread * (k - (len(combos) - 1) / 2)
            color = colour.of(value)
            draw_interval_bars(ax, x, rows, color)
            ax.scatter(
                x,
                rows["median"],
                color=color,
                marker=MARKERS[index % len(MARKERS)],
                s=48,
                zorder=3,
                edgecolors="white",
                linewidths=0.5,
            )
        ax.set_xticks(range(len(positions)), [format_value(v) for v in positions])
        ax.set_xlabel("warmup length (steps)" if x_factor == "warmup" else factor_name(x_factor))
        ax.set_ylabel(y_label)
        ax.set_title(meaning, fontsize="small")
        ax.grid(True, alpha=0.3)
        if column == "skew_gap_end":
            ax.axhline(0, color="#999999", linewidth=0.8, zorder=1)
    handles = [
        Line2D([], [], color=GREY, marker=MARKERS[i % len(MARKERS)], linestyle="none", label=cell_label(p))
        for i, p in enumerate(panels)
    ]
    title = "marker: " + (", ".join(factors) or "all runs")
    fig.legend(handles=handles, loc="outside right center", frameon=False, fontsize="small", title=title)
    phrase = seeds_phrase(usable, cell_factors(usable), None)
    interval = "" if phrase.startswith("1 seed") else ", bars: 95% bootstrap CI"
    set_title(fig, f"Early over-fitting measures; {colour.title}, marker: cell", phrase + interval)


def cell_label(panel: Panel) -> str:
    """A panel's title on one line, for a legend entry."""
    return panel.title.replace("\n", ", ")
