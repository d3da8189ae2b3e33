"""``lr_schedule``: the learning rate the optimizer actually applied (``opt/lr``), one run per colour level."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from analysis.plots.curves import has_data, last_finite, metric_curves
from analysis.plots.step_panels import finish_panel, step_panels
from analysis.plots.style import (
    add_legend,
    diverged_handle,
    end_of_warmup_handle,
    mark_diverged,
    new_figure,
    set_title,
    underneath_width,
)
from analysis.plots.tables import LR_FACTORS, FigureSkipped, numeric_column

NOT_IN_SCHEDULE = ("skew", "data", "model", *LR_FACTORS)  # factors that make no panels: the schedule is the same


def lr_schedule(runs: pd.DataFrame, history: pd.DataFrame, *, colour_by: str | None = None) -> Figure:
    """The learning rate each level of the colour factor actually applied (``opt/lr``, as logged), one run per
    level and panel.

    Panels: one per optimizer (x schedule, warmup shape, steps when they vary); skew, data, model and seed do not
    change the schedule, the learning rate factors only scale it (``NOT_IN_SCHEDULE``). The run drawn is the first
    completed one (lowest seed), else the first diverged one: its line stops where the run did, marked x. When
    the peak rate varies within a panel (``peak_lr``, the schedule's resolved peak, e.g. ``lr_sharpness_multiple
    x 2/sharpness`` of each seed; ``lr`` in records without it) the y axis is each run's ``opt/lr(t) / peak_lr``.
    Where lines coincide the control's (drawn widest, underneath) still shows.
    """
    layout = step_panels(runs, colour_by, exclude=NOT_IN_SCHEDULE)
    colour, usable = layout.colour, layout.runs
    if not has_data(history, "opt/lr"):
        raise FigureSkipped("no learning rate (opt/lr) in the history")
    fig, axes = new_figure(layout.n_rows, layout.n_cols, sharex=True)
    applied = metric_curves(usable, history, "opt/lr")
    peak = numeric_column(usable, "peak_lr").fillna(numeric_column(usable, "lr"))  # the schedule's peak rate
    relative = any(peak[panel.runs.index].nunique() > 1 for panel in layout.panels)
    n_levels = len(colour.levels())
    stopped = False
    for panel in layout.panels:
        ax = axes[panel.row, panel.col]
        for rank, value, cell in reversed(list(colour.groups(panel.runs))):  # the control first, widest, underneath
            index = cell.assign(rank=cell["status"].map(status_rank)).sort_values(["rank", "seed"]).index[0]
            row = applied.values[usable.index.get_loc(index)]
            if relative:
                row = row / float(peak[index])
            width = underneath_width(rank, n_levels)
            ax.plot(applied.steps, row, color=colour.of(value), linewidth=width, solid_capstyle="butt", zorder=2)
            point = last_finite(applied.steps, row) if usable.loc[index, "status"] == "diverged" else None
            if point is not None:
                mark_diverged(ax, *point, colour.of(value))
                stopped = True
        finish_panel(ax, panel, colour)
        ax.set_ylim(bottom=0)
        ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
    last_step = float(applied.steps.max()) if len(applied.steps) else math.nan
    layout.finish_axes(axes, last_step, "learning rate / peak" if relative else "learning rate")
    handles: list[Any] = colour.handles(usable, note_status=False)
    handles.append(end_of_warmup_handle())
    if stopped:
        handles.append(diverged_handle())
    add_legend(fig, handles, title=colour.name)
    drawn = "one run per line, as logged" + ("; a diverged run's log stops at its x" if stopped else "")
    set_title(fig, f"Learning rate applied (opt/lr); {colour.title}", drawn)
    return fig


def status_rank(status: str) -> int:
    """Sort key preferring a completed run over a diverged one."""
    return 0 if status == "completed" else 1
