"""``lr_schedule``: the learning rate the optimizer actually applied (``opt/lr``), one run per colour level."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from analysis.plots.colours import colouring, factor_name
from analysis.plots.curves import has_data, metric_curves
from analysis.plots.style import (
    add_legend,
    draw_warmup_lines,
    end_of_warmup_handle,
    hide_unused,
    label_outer,
    new_figure,
    set_step_axis,
    set_title,
    step_scale,
    underneath_width,
)
from analysis.plots.tables import LR_FACTORS, FigureSkipped, grid, panel_factors, result_runs, split_panels


def lr_schedule(runs: pd.DataFrame, history: pd.DataFrame, *, colour_by: str | None = None) -> Figure:
    """The learning rate each level of the colour factor actually applied (``opt/lr``, as logged), one run per
    level and panel.

    Panels: one per optimizer (x schedule, warmup shape, steps when they vary); skew, data, model and seed do not
    change the schedule. The run drawn is the first completed one (lowest seed). When the peak learning rate
    varies within a panel the y axis is the rate as a fraction of each run's peak ``lr``. Where lines coincide
    the control's (drawn widest, underneath) still shows.
    """
    colour = colouring(runs, colour_by)
    usable = result_runs(runs)
    if not has_data(history, "opt/lr"):
        raise FigureSkipped("no learning rate (opt/lr) in the history")
    factors = [f for f in panel_factors(usable, colour.factor) if f not in ("skew", "data", "model", *LR_FACTORS)]
    panels = split_panels(usable, factors)
    n_rows, n_cols = grid(panels, factors)
    fig, axes = new_figure(n_rows, n_cols, sharex=True)
    applied = metric_curves(usable, history, "opt/lr")
    relative = any(panel.runs["lr"].nunique() > 1 for panel in panels)
    n_levels = len(colour.levels())
    for panel in panels:
        ax = axes[panel.row, panel.col]
        for rank, value, cell in reversed(list(colour.groups(panel.runs))):  # the control first, widest, underneath
            index = cell.assign(rank=cell["status"].map(status_rank)).sort_values(["rank", "seed"]).index[0]
            row = applied.values[usable.index.get_loc(index)]
            if relative:
                row = row / float(usable.loc[index, "lr"])
            width = underneath_width(rank, n_levels)
            ax.plot(applied.steps, row, color=colour.of(value), linewidth=width, solid_capstyle="butt", zorder=2)
        draw_warmup_lines(ax, panel.runs, colour)
        ax.set_title(panel.title, fontsize="medium")
        ax.set_ylim(bottom=0)
        ax.grid(True, alpha=0.3)
        ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
    last_step = float(applied.steps.max()) if len(applied.steps) else math.nan
    x_label = set_step_axis(axes[0, 0], step_scale(usable, last_step), last_step)
    hide_unused(axes, panels)
    label_outer(axes, panels, x_label, "learning rate / peak" if relative else "learning rate")
    handles: list[Any] = colour.handles(usable, note_status=False)
    handles.append(end_of_warmup_handle())
    add_legend(fig, handles, title=factor_name(colour.factor))
    set_title(fig, f"Learning rate applied (opt/lr); {colour.title}", "one run per line, as logged")
    return fig


def status_rank(status: str) -> int:
    """Sort key preferring a completed run over a diverged one."""
    return 0 if status == "completed" else 1
