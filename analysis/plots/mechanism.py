"""``mechanism``: why warmup matters, from the probes: one block of panels per probe, one panel per setup."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from analysis.plots.colours import Colouring
from analysis.plots.curves import Curves, has_data, last_finite, metric_curves, seed_summary, use_log_scale
from analysis.plots.step_panels import finish_panel, step_panels
from analysis.plots.style import (
    GREY,
    diverged_handle,
    end_of_warmup_handle,
    mark_diverged,
    set_log_y,
    set_step_axis,
    step_scale,
)
from analysis.plots.tables import (
    MAX_COLUMNS,
    FigureSkipped,
    Panel,
    cell_factors,
    format_value,
    seeds_phrase,
    warmup_ends,
)

PANEL_IN = (3.3, 2.2)  # one panel, inches


@dataclass(frozen=True)
class MechanismRow:
    """One probe of the mechanism figure: a metric, its y label, and optionally a band or a reference line."""

    metric: str
    title: str  # the block's title
    y_label: str  # short: the block's title says the rest
    band: tuple[str, str] | None = None  # (low metric, high metric) drawn as a band around ``metric``
    reference: str | None = None  # a metric drawn dashed in the same colour (a stability limit)
    reference_label: str = ""
    log_y: bool = True
    absent_note: str = "not measured"


MECHANISM_ROWS = (
    MechanismRow("opt/update_ratio", "update-to-weight norm ratio", "‖Δw‖ / ‖w‖"),
    MechanismRow(
        "probe/v_hat_rel_error", "second-moment relative error", "rel. error of v̂", absent_note="no second moment"
    ),
    MechanismRow(
        "probe/eff_step/q50",
        "effective step per coordinate",
        "lr / (√v̂ + ε)",
        band=("probe/eff_step/q10", "probe/eff_step/q90"),
        absent_note="no second moment",
    ),
    MechanismRow(
        "probe/sharpness",
        "sharpness: top Hessian eigenvalue",
        "λmax",
        reference="probe/sharpness_limit",
        reference_label="2/lr: gradient descent's stability limit",
    ),
    MechanismRow(
        "probe/precond_sharpness",
        "preconditioned sharpness",
        "precond. λmax",
        reference="probe/precond_sharpness_limit",
        reference_label="preconditioned stability limit",
        absent_note="no preconditioner",
    ),
)


def mechanism(
    runs: pd.DataFrame, history: pd.DataFrame, *, through_steps: float | None = None, colour_by: str | None = None
) -> Figure:
    """Why warmup matters: the probes over the early steps, one line per colour level, a block per probe.

    Blocks (each left out when no run logged it): update-to-weight ratio ``opt/update_ratio``; second-moment
    error ``probe/v_hat_rel_error``; effective step ``probe/eff_step/q50`` with the q10–q90 band (quantiles over
    coordinates, each the median over seeds); sharpness ``probe/sharpness`` with its stability limit
    ``probe/sharpness_limit = 2/lr`` dashed; preconditioned sharpness with its limit. Within a block one panel per
    setup (optimizer x the other varying factors), wrapped at ``MAX_COLUMNS``; a setup that does not measure the
    probe (sgd has no second moment) has no panel, and the block's title names it. Lines are medians over seeds;
    a diverged run is an x where its probe stops. ``through_steps`` defaults to twice the longest warmup (all
    steps when no run warms up), and the title says which steps are shown.
    Raises FigureSkipped when no ``probe/`` column has a value (the study ran with ``probes=none``).
    """
    layout = step_panels(runs, colour_by)  # the grid is this figure's own: a block of rows per probe
    colour, usable, panels = layout.colour, layout.runs, layout.panels
    if not any(has_data(history, c) for c in history.columns if c.startswith("probe/")):
        raise FigureSkipped("the probes were off (no probe/ metric in the history): run with probes=all")
    if through_steps is None:
        longest = float(warmup_ends(usable).max())
        through_steps = 2 * longest if np.isfinite(longest) and longest > 0 else None
    blocks = []
    for spec in (row for row in MECHANISM_ROWS if has_data(history, row.metric)):
        curves = metric_curves(usable, history, spec.metric, through_steps)
        measured = [p for p in panels if np.isfinite(curves.of(usable.index.isin(p.runs.index))).any()]
        if measured:
            blocks.append((spec, curves, measured, [p for p in panels if p not in measured]))
    if not blocks:
        raise FigureSkipped("no probe of this figure (update ratio, second moment, sharpness) has a value")
    n_cols = min(MAX_COLUMNS, max(len(measured) for _, _, measured, _ in blocks))
    heights = [math.ceil(len(measured) / n_cols) for _, _, measured, _ in blocks]
    handles: list[Any] = colour.handles(usable)
    legend_in = max(2.6, 0.062 * max(len(h.get_label()) for h in handles) + 0.9)  # small font: ~0.062 in a letter
    size = (PANEL_IN[0] * n_cols + legend_in, sum(PANEL_IN[1] * h + 0.5 for h in heights) + 0.9)
    fig = Figure(figsize=size, layout="constrained")
    halves: Any = fig.subfigures(1, 2, squeeze=False, width_ratios=[PANEL_IN[0] * n_cols, legend_in])
    left, right = halves[0, 0], halves[0, 1]
    blocks_subfigures: Any = left.subfigures(len(blocks), 1, squeeze=False, height_ratios=[h + 0.25 for h in heights])
    shown = np.array([], dtype=np.int64)
    stopped = False
    for (spec, curves, measured, missing), sub, height in zip(blocks, blocks_subfigures[:, 0], heights, strict=True):
        axes = sub.subplots(height, n_cols, sharex=True, sharey=True, squeeze=False)
        band = [metric_curves(usable, history, m, through_steps) for m in spec.band] if spec.band else []
        limit = metric_curves(usable, history, spec.reference, through_steps) if spec.reference else None
        for index, ax in enumerate(axes.ravel()):
            if index >= len(measured):
                ax.set_axis_off()
                continue
            panel = measured[index]
            stopped |= draw_panel(ax, usable, panel, colour, curves, band, limit)
            finish_panel(ax, panel, colour, x_max=through_steps, fontsize="small")
            if index % n_cols == 0:
                ax.set_ylabel(spec.y_label, fontsize="small")
            if index + n_cols >= len(measured):
                ax.xaxis.set_tick_params(labelbottom=True)
        values = [curves.values] + ([limit.values] if limit else [])
        if spec.log_y and use_log_scale(values, ratio=1.0, positive_share=0.9):
            set_log_y(axes[0, 0])
        last = float(curves.steps.max())
        label = set_step_axis(axes[0, 0], step_scale(usable, last), last)
        for index in range(max(0, len(measured) - n_cols), len(measured)):
            axes.ravel()[index].set_xlabel(label, fontsize="small")
        absent = f"; {spec.absent_note} for {setups_text(missing, measured)}" if missing else ""
        sub.suptitle(f"{spec.title} ({spec.metric}){absent}", fontsize="medium")
        shown = np.union1d(shown, curves.steps)
    if any(spec.band for spec, *_ in blocks):
        handles.append(Patch(color=GREY, alpha=0.15, label="effective step q10–q90 over coordinates"))
    if any(spec.reference for spec, *_ in blocks):
        handles.append(Line2D([], [], color=GREY, linestyle="--", label="stability limit (2/lr; precond.)"))
    handles.append(end_of_warmup_handle())
    if stopped:
        handles.append(diverged_handle())
    right.legend(handles=handles, loc="center left", frameon=False, fontsize="small", title=colour.name)
    fig.suptitle(
        f"Mechanism probes {steps_phrase(usable, shown, through_steps)}; {colour.title}\n"
        + seeds_phrase(usable, cell_factors(usable), None),
        fontsize="large",
    )
    return fig


def setups_text(missing: list[Panel], measured: list[Panel]) -> str:
    """The setups without a probe, in few words: the factor values they share that no measured setup has
    (``optimizer = sgd``), else every one's title."""
    common = [
        f"{factor} = {format_value(value)}"
        for factor, value in missing[0].key.items()
        if all(p.key[factor] == value for p in missing) and all(p.key[factor] != value for p in measured)
    ]
    return ", ".join(common) if common else "; ".join(p.title.replace("\n", ", ") for p in missing)


def steps_phrase(runs: pd.DataFrame, shown: np.ndarray, through_steps: float | None) -> str:
    """``"over the first 200 of 1000 steps (twice the longest warmup)"``, or ``"over all 1000 steps"``."""
    total = float(pd.to_numeric(runs["steps"], errors="coerce").max()) if "steps" in runs else math.nan
    last = float(shown.max()) if len(shown) else math.nan
    if through_steps is None or not math.isfinite(total) or through_steps >= total:
        return f"over all {format_value(total)} steps" if math.isfinite(total) else "over the run"
    return f"over the first {format_value(last)} of {format_value(total)} steps (twice the longest warmup)"


def draw_panel(
    ax: Axes,
    usable: pd.DataFrame,
    panel: Panel,
    colour: Colouring,
    curves: Curves,
    band: list[Curves],
    limit: Curves | None,
) -> bool:
    """One panel: per level the median over seeds of the metric, of its band's edges (filled) and of its stability
    limit (dashed), the control on top; an x where a diverged run's probe stops. True when some run diverged."""
    in_panel = usable.index.isin(panel.runs.index)
    stopped = False
    for rank, value, _ in colour.groups(panel.runs):
        mask = in_panel & colour.mask(usable, value)
        color, z = colour.of(value), colour.zorder(rank)
        median = seed_summary(curves.of(mask))[0]
        ax.plot(curves.steps, median, color=color, linewidth=1.5, marker=colour.marker(value), markersize=3, zorder=z)
        if band:
            low, high = (seed_summary(edge.of(mask))[0] for edge in band)
            ax.fill_between(band[0].steps, low, high, color=color, alpha=0.15, linewidth=0, zorder=1)
        if limit is not None and len(limit.steps):
            ax.plot(limit.steps, seed_summary(limit.of(mask))[0], color=color, linewidth=1.0, linestyle="--")
        for row in curves.of(mask & (usable["status"] == "diverged").to_numpy()):
            point = last_finite(curves.steps, row)
            if point is not None and point[0] < curves.steps.max():  # it stopped within the steps shown
                mark_diverged(ax, *point, color)
                stopped = True
    return stopped
