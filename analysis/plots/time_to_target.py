"""``time_to_target``: Kaplan–Meier fraction of seeds whose metric reached a target by step t."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from analysis import stats
from analysis.plots.curves import has_data
from analysis.plots.step_panels import finish_panel, step_panels
from analysis.plots.style import GREY, add_legend, end_of_warmup_handle, new_figure, set_title, underneath_width
from analysis.plots.tables import FigureSkipped, rows_matching, seeds_count


def time_to_target(
    runs: pd.DataFrame,
    history: pd.DataFrame,
    *,
    metric: str = "eval/loss",
    target: float | None = None,
    colour_by: str | None = None,
) -> Figure:
    """Kaplan–Meier fraction of seeds whose ``metric`` reached ``target`` by step t, one line per colour level.

    ``stats.time_to_target`` times every run (a run that never reaches the target, or diverges first, is censored
    at its last logged step, marked +), ``stats.kaplan_meier`` turns each cell's times into the fraction reached.
    ``target`` defaults to ``stats.default_target`` over the study's cells (the best cell's median final value,
    loosened by 5%). Panels as in ``convergence``.
    """
    layout = step_panels(runs, colour_by)
    colour, usable = layout.colour, layout.runs
    if not has_data(history, metric):
        raise FigureSkipped(f"no {metric} in the history")
    by = [*layout.factors, colour.factor]
    if target is None:
        try:
            target = stats.default_target(usable, history, metric, by)
        except ValueError as err:  # no completed run logged the metric
            raise FigureSkipped(str(err)) from err
    times = stats.time_to_target(usable, history, metric, target, by)
    curves = stats.kaplan_meier(times, by)
    last_step = float(history["step"].max())
    fig, axes = new_figure(layout.n_rows, layout.n_cols, sharex=True, sharey=True)
    n_levels = len(colour.levels())
    for panel in layout.panels:
        ax = axes[panel.row, panel.col]
        in_panel = rows_matching(curves, panel.key)
        for rank, value, _ in reversed(list(colour.groups(panel.runs))):  # the control first, widest, underneath
            color = colour.of(value)
            curve = curves[in_panel & colour.mask(curves, value)].sort_values("step")
            steps = np.concatenate([[0.0], curve["step"].to_numpy(dtype="float64"), [last_step]])
            fraction = curve["fraction_reached"].to_numpy(dtype="float64")
            fraction = np.concatenate([[0.0], fraction, fraction[-1:] if len(fraction) else [0.0]])
            ax.step(steps, fraction, where="post", color=color, linewidth=underneath_width(rank, n_levels))
            censored = curve[curve["n_censored"] > 0]
            ax.plot(censored["step"], censored["fraction_reached"], "+", color=color, markersize=10, mew=1.5)
        finish_panel(ax, panel, colour)
        ax.set_ylim(-0.03, 1.03)
    layout.finish_axes(axes, last_step, "fraction of seeds at target")
    handles: list[Any] = colour.handles(usable)
    handles.append(Line2D([], [], color=GREY, marker="+", linestyle="none", label="censored (never reached)"))
    handles.append(end_of_warmup_handle())
    add_legend(fig, handles, title=colour.name)
    relation = "≥" if stats.higher_is_better(metric) else "≤"
    unit = " nats" if metric.endswith("loss") else ""
    set_title(
        fig,
        f"Time to {metric} {relation} {target:.3g}{unit}; {colour.title}",
        f"Kaplan–Meier fraction of seeds that reached it, {seeds_count(usable, by)} per cell",
    )
    return fig
