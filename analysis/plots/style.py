"""The look shared by every figure: figure size, axes, titles, legends and saving (colours: ``colours``).

Steps are optimizer updates, on a symlog axis when the shortest warmup ends within the first ``SHORT_WARMUP`` of
the axis (``step_scale``); losses in nats, a log scale where values span more than a factor 4, with a top that a
diverging run does not set (``set_loss_limits``); numbers printed ``%g``; one legend per figure, on the right,
titled with what the colour means; a diverged run's curve ends in an x (``mark_diverged``); a median over seeds
carries its bootstrap interval as a pale bar (``draw_interval_bars``).
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure, SubFigure
from matplotlib.lines import Line2D
from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter
from matplotlib.transforms import ScaledTranslation

from analysis.plots.colours import Colouring
from analysis.plots.tables import Panel, error_bars, format_value, warmup_ends

DPI = 150
PANEL_SIZE_IN = (3.6, 2.7)  # width, height of one panel in inches
GREY = "#444444"
STEP_LABEL = "step (optimizer updates)"
LOSS_LABEL = "loss (nats)"
SHORT_WARMUP = 0.15  # a warmup ending before this share of the step axis gets a symlog axis
DIVERGED_MARK_PT = 5.0  # a diverged run's x off the top of the scale: its centre this far under the top edge

# A figure: ``(runs, history, **options) -> Figure``; raises ``FigureSkipped`` when it does not apply.
FigureFunction = Callable[..., Figure]


# ---------------------------------------------------------------------------------------------------- axes


def new_figure(
    n_rows: int, n_cols: int, extra_width_in: float = 2.6, panel: tuple[float, float] = PANEL_SIZE_IN, **subplots: Any
) -> tuple[Figure, np.ndarray]:
    """A constrained-layout figure of ``n_rows x n_cols`` panels, with room on the right for the legend."""
    fig = Figure(figsize=(panel[0] * n_cols + extra_width_in, panel[1] * n_rows + 0.9), layout="constrained")
    return fig, fig.subplots(n_rows, n_cols, squeeze=False, **subplots)


def hide_unused(axes: np.ndarray, panels: list[Panel]) -> None:
    """Turn off the grid cells no panel uses."""
    used = {(p.row, p.col) for p in panels}
    for (r, c), ax in np.ndenumerate(axes):
        if (r, c) not in used:
            ax.set_axis_off()


def note_in_panel(ax: Axes, text: str) -> None:
    """A short grey note in the middle of an empty panel."""
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", color="#666666", wrap=True)


def add_legend(fig: Figure | SubFigure, handles: list[Any], title: str | None = None) -> None:
    """One legend for the whole figure, outside the panels on the right (centred: clear of the title)."""
    fig.legend(handles=handles, loc="outside right center", title=title, frameon=False, fontsize="small")


def set_log_y(ax: Axes) -> None:
    """A log y axis labelled with plain numbers (``0.5``, ``2``, not ``5 x 10^-1``).

    Minor ticks (2, 3, ..., 9 times a power of ten) are labelled only when the axis spans under two decades,
    and then only 2, 3 and 5 (every one under half a decade); decided when drawn, so it suits the final limits.
    """
    ax.set_yscale("log", nonpositive="mask")

    def minor_label(value: float, _: int) -> str:
        low, high = ax.get_ylim()
        decades = math.log10(high / low) if low > 0 and high > low else 0.0
        leading = round(value / 10 ** math.floor(math.log10(value) + 1e-9))
        shown = decades < 0.5 or (decades < 2 and leading in (2, 3, 5))
        return f"{value:g}" if shown else ""

    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    ax.yaxis.set_minor_formatter(FuncFormatter(minor_label))


def set_loss_limits(ax: Axes, shown: list[np.ndarray], top: float | None) -> None:
    """y limits from the values drawn, with the top at ``top`` (``tables.loss_ceiling``): the autoscaled bottom
    would otherwise still make room for a diverging run's exploding loss."""
    if top is None:
        return
    values = np.concatenate([np.ravel(v) for v in shown]) if shown else np.array([])
    values = values[np.isfinite(values) & (values <= top)]
    if ax.get_yscale() == "log":
        values = values[values > 0]
        bottom = float(values.min()) / 1.15 if len(values) else None
    else:
        bottom = float(values.min()) - 0.05 * (top - float(values.min())) if len(values) else None
    ax.set_ylim(bottom, top)


def set_log_x_at(ax: Axes, values: Iterable[float], most_labels: int = 7) -> None:
    """A log x axis with a tick at each of ``values`` (the learning rates of a grid), at most ``most_labels``
    of them labelled (plainly, 3 significant digits) so that the labels never run into each other."""
    ticks = sorted({float(v) for v in values})
    every = max(1, math.ceil(len(ticks) / most_labels))
    shown = {t for k, t in enumerate(ticks) if k % every == 0}
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:.3g}" if value in shown else ""))
    ax.xaxis.set_minor_formatter(NullFormatter())


def step_scale(runs: pd.DataFrame, last_step: float) -> float | None:
    """The linear range of a symlog step axis (the shortest warmup), or None for a linear axis: a symlog axis
    when the shortest non-zero warmup ends within the first ``SHORT_WARMUP`` of the axis (0 to ``last_step``)."""
    ends = warmup_ends(runs)
    ends = ends[ends > 0]
    if not len(ends) or not np.isfinite(last_step) or last_step <= 0:
        return None
    shortest = float(ends.min())
    return max(1.0, shortest) if shortest < SHORT_WARMUP * last_step else None


def set_step_axis(ax: Axes, linear_to: float | None, last_step: float | None = None) -> str:
    """Apply ``step_scale``'s choice to an x axis of steps (from 0, with room after ``last_step`` for a marker);
    returns the axis label."""
    if linear_to is None:
        return STEP_LABEL
    ax.set_xscale("symlog", linthresh=linear_to, linscale=0.6)
    if last_step and np.isfinite(last_step):
        ax.set_xlim(0, 1.15 * last_step)
        ax.xaxis.set_major_locator(FixedLocator(step_ticks(linear_to, last_step)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    return f"step (log scale past {format_value(linear_to)})"


def step_ticks(linear_to: float, last_step: float) -> list[float]:
    """Ticks of a symlog step axis: 0, then round numbers from ``linear_to`` to ``last_step`` (1-2-5 over a decade
    or so, 1-3 over two, powers of ten beyond), so that about six labels fit under a panel."""
    decades = math.log10(max(last_step, linear_to) / linear_to)
    leading = (1, 2, 5) if decades <= 1.2 else (1, 3) if decades <= 2.2 else (1,)
    start, stop = math.floor(math.log10(linear_to)), math.ceil(math.log10(last_step))
    ticks = [m * 10.0**k for k in range(start, stop + 1) for m in leading]
    return [0.0, *(t for t in ticks if linear_to <= t <= last_step * 1.05)]


def set_title(fig: Figure | SubFigure, what: str, how: str) -> None:
    """The figure's title: what is compared, then how it is summarised (seeds, band), wrapped to the width."""
    width_in = fig.get_figwidth() if isinstance(fig, Figure) else fig.figure.get_figwidth()
    characters = max(40, int(width_in * 72 / (0.56 * 12)))  # about 0.56 em per character at 12 pt ("large")
    lines = textwrap.wrap(what, characters) + textwrap.wrap(how, characters)
    fig.suptitle("\n".join(lines), fontsize="large")


def label_outer(axes: np.ndarray, panels: list[Panel], x_label: str, y_label: str) -> None:
    """Axis labels on the left column and the bottom panel of each column only."""
    bottom: dict[int, int] = {}
    for panel in panels:
        bottom[panel.col] = max(bottom.get(panel.col, -1), panel.row)
    for panel in panels:
        ax = axes[panel.row, panel.col]
        if panel.col == 0:
            ax.set_ylabel(y_label)
        if panel.row == bottom[panel.col]:
            ax.set_xlabel(x_label)
            ax.xaxis.set_tick_params(labelbottom=True)


def draw_warmup_lines(ax: Axes, runs: pd.DataFrame, colour: Colouring, x_max: float | None = None) -> None:
    """A dotted vertical line in each level's colour where its warmup ends (median ``warmup_steps``)."""
    for _, value, cell in colour.groups(runs):
        end = warmup_ends(cell).median()
        if np.isfinite(end) and end > 0 and (x_max is None or end <= x_max):
            ax.axvline(end, color=colour.of(value), linestyle=":", linewidth=1.2)


def end_of_warmup_handle() -> Line2D:
    return Line2D([], [], color=GREY, linestyle=":", label="end of warmup")


def mark_diverged(ax: Axes, step: float, value: float, color: str, top: float | None = None) -> None:
    """An x where a diverged run's curve stops, at ``(step, value)``; just inside the top edge when ``value`` is
    above ``top`` (the axis' top, ``curves.loss_ceiling``), so that it stays clear of the panel's title."""
    marks: dict[str, Any] = {"marker": "x", "markersize": 8, "markeredgewidth": 2, "clip_on": False, "zorder": 21}
    if top is None or value <= top:
        ax.plot(step, value, color=color, **marks)
        return
    below_edge = ax.transData + ScaledTranslation(0, -DIVERGED_MARK_PT / 72, ax.figure.dpi_scale_trans)
    ax.plot(step, top, color=color, transform=below_edge, **marks)


def diverged_handle() -> Line2D:
    return Line2D([], [], color=GREY, marker="x", linestyle="none", label="a run diverged here")


def draw_interval_bars(ax: Axes, x: np.ndarray, table: pd.DataFrame, color: str, estimate: str = "median") -> None:
    """Pale vertical bars at ``x`` from ``<estimate>_low`` to ``<estimate>_high`` (``stats.aggregate``'s 95%
    bootstrap interval over seeds), under the points; none where a cell has no interval (1 seed)."""
    bars = error_bars(table, estimate)
    ax.errorbar(x, table[estimate], yerr=bars, fmt="none", ecolor=color, elinewidth=1.0, alpha=0.6, zorder=2)


def underneath_width(order: int, count: int, thinnest: float = 1.4, extra: float = 1.6) -> float:
    """Line width of the ``order``-th of ``count`` levels: the first (the control) widest, so that where lines
    coincide (the same peak rate, all at fraction 0) each still shows under the next."""
    return thinnest + extra * (count - 1 - order) / max(count - 1, 1)


def save(fig: Figure, path: str | Path, formats: Sequence[str] = ("png", "svg"), dpi: int = DPI) -> list[Path]:
    """Write ``fig`` to ``<path>.<format>`` for each format (``png`` at ``dpi``, ``svg``, ``pdf``); the paths.

    The SVG and PDF carry no creation date, so rendering the same study twice gives the same files.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    written = []
    for fmt in formats:
        out = path.with_name(f"{path.name}.{fmt}")
        metadata = {"svg": {"Date": None}, "pdf": {"CreationDate": None}}.get(fmt)
        fig.savefig(out, format=fmt, dpi=dpi, metadata=metadata)
        written.append(out)
    return written
