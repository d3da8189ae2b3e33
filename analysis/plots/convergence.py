"""``convergence``: held-out and train loss against step, one line per level of the colour factor."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from analysis.plots.curves import (
    Curves,
    eval_interval,
    has_data,
    last_finite,
    loss_ceiling,
    metric_curves,
    seed_summary,
    trailing_mean,
    use_log_scale,
)
from analysis.plots.step_panels import finish_panel, step_panels
from analysis.plots.style import (
    GREY,
    LOSS_LABEL,
    add_legend,
    diverged_handle,
    end_of_warmup_handle,
    mark_diverged,
    new_figure,
    set_log_y,
    set_loss_limits,
    set_title,
)
from analysis.plots.tables import BANDS, FigureSkipped, cell_factors, check_band, seeds_per_cell, seeds_phrase

MOST_MARKERS = 10  # markers per held-out line: enough to tell the levels apart, few enough to read the line


def convergence(
    runs: pd.DataFrame,
    history: pd.DataFrame,
    *,
    band: str = "range",
    train_window_steps: int | None = None,
    log_y: bool | None = None,
    colour_by: str | None = None,
) -> Figure:
    """Held-out and train loss against step, one line per level of the colour factor, one panel per optimizer (x
    the other varying factors).

    Held-out loss (``eval/loss``, solid, a marker per level): the median over seeds at each evaluation step, with a
    band over seeds (``band``: ``"range"`` min–max, ``"iqr"`` 25th–75th percentile); a star marks its lowest
    point (the best step). Train loss (``train/loss``, dashed, lighter band): each run's trailing mean over
    ``train_window_steps`` updates (default: the evaluation interval), then the median over seeds. The control
    level (no warmup) is drawn last, on top. ``log_y`` defaults to a log scale when the loss spans more than a
    factor 4; the step axis is symlog when the shortest warmup is short against the run (``style.step_scale``).
    A diverged run's lines stop where it stopped, marked x (at the top when its loss is off the scale); past it
    the median and band are over the seeds still running, and the subtitle says so.
    """
    check_band(band)
    layout = step_panels(runs, colour_by)
    colour, usable = layout.colour, layout.runs
    if not has_data(history, "eval/loss") and not has_data(history, "train/loss"):
        raise FigureSkipped("no loss (eval/loss, train/loss) in the history")
    window = train_window_steps or eval_interval(history)
    fig, axes = new_figure(layout.n_rows, layout.n_cols, sharex=True, sharey=True)
    held_out = metric_curves(usable, history, "eval/loss")
    train = metric_curves(usable, history, "train/loss")
    train = Curves(train.steps, trailing_mean(train.values, window), usable)
    several = seeds_per_cell(usable, cell_factors(usable))[1] > 1
    drawn: list[np.ndarray] = []
    stops: list[tuple[Axes, float, float, str]] = []  # (panel, step, loss, colour) where a diverged run stopped
    for panel in layout.panels:
        ax = axes[panel.row, panel.col]
        in_panel = usable.index.isin(panel.runs.index)
        for rank, value, cell in colour.groups(panel.runs):
            color, z = colour.of(value), colour.zorder(rank)  # the control on top
            mask = in_panel & colour.mask(usable, value)
            median, low, high = seed_summary(held_out.of(mask), band)
            n_points = int(np.isfinite(median).sum())
            every = max(1, math.ceil(n_points / MOST_MARKERS))
            marks = {"marker": colour.marker(value), "markersize": 3.5, "markevery": (rank % every, every)}
            ax.plot(held_out.steps, median, color=color, linewidth=1.8, zorder=z, **marks)
            train_median, train_low, train_high = seed_summary(train.of(mask), band)
            ax.plot(train.steps, train_median, color=color, linewidth=1.0, linestyle="--", alpha=0.9, zorder=z)
            if len(cell) > 1:
                ax.fill_between(held_out.steps, low, high, color=color, alpha=0.18, linewidth=0, zorder=1)
                ax.fill_between(train.steps, train_low, train_high, color=color, alpha=0.07, linewidth=0, zorder=1)
            if n_points:
                best = int(np.nanargmin(median))
                star = {"marker": "*", "markersize": 12, "markeredgecolor": "white", "markeredgewidth": 0.8}
                ax.plot(
                    held_out.steps[best], median[best], color=color, linestyle="none", zorder=20, clip_on=False, **star
                )
            drawn += [median, train_median]
            for row in train.of(mask & (usable["status"] == "diverged").to_numpy()):
                point = last_finite(train.steps, row)
                if point is not None:
                    stops.append((ax, *point, color))
        finish_panel(ax, panel, colour)
    last_step = max([float(s.max()) for s in (held_out.steps, train.steps) if len(s)], default=math.nan)
    layout.finish_axes(axes, last_step, LOSS_LABEL)
    top = loss_ceiling(drawn[::2], drawn[1::2])
    shown = drawn if top is None else [np.fmin(values, top) for values in drawn]
    if log_y if log_y is not None else use_log_scale(shown):
        set_log_y(axes[0, 0])
    set_loss_limits(axes[0, 0], shown, top)  # the panels share y
    for ax, step, loss, color in stops:  # at the top when the loss that stopped the run is off the scale
        mark_diverged(ax, step, loss, color, top)
    handles: list[Any] = colour.handles(usable, markers=True)
    handles += [
        Line2D([], [], color=GREY, linewidth=1.8, label="held-out loss (eval/loss)"),
        Line2D([], [], color=GREY, linewidth=1.0, linestyle="--", label=f"train loss, mean of last {window} steps"),
    ]
    if several:
        handles.append(Patch(color=GREY, alpha=0.18, label=f"band: {BANDS[band]} over seeds"))
    handles.append(
        Line2D([], [], color=GREY, marker="*", markersize=11, linestyle="none", label="lowest held-out loss")
    )
    handles.append(end_of_warmup_handle())
    if stops:
        handles.append(diverged_handle())
    add_legend(fig, handles, title=colour.name)
    how = seeds_phrase(usable, cell_factors(usable), band)
    if stops and several:  # nanmedian: a diverged run's NaNs leave the median to the others
        how += "; past an x, over the seeds still running"
    set_title(fig, f"Held-out (solid) and train (dashed) loss; {colour.title}", how)
    return fig
