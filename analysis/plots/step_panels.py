"""The frame the curve figures share (``convergence``, ``lr_schedule``, ``time_to_target``, ``early_overfitting``,
``mechanism``): one panel per setup, steps on the x axis, one line per level of the colour factor.

A study's runs with a result are split into one panel per combination of the panel factors (every varying factor
but the colour factor and the seed: ``tables.panel_factors``) and placed in a grid (``tables.grid``: a block of
rows per optimizer, each row wrapped at ``MAX_COLUMNS``). Every panel marks where each level's warmup ends (dotted,
in the level's colour) and carries its title and a light grid (``finish_panel``); the panels share one step axis
(``style.step_scale``: symlog past a short warmup), labelled on the outer panels only (``StepPanels.finish_axes``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from analysis.plots.colours import Colouring, colouring
from analysis.plots.style import draw_warmup_lines, hide_unused, label_outer, set_step_axis, step_scale
from analysis.plots.tables import Panel, grid, panel_factors, result_runs, split_panels


@dataclass
class StepPanels:
    """A curve figure's panels: the colour, the runs with a result, the panel factors and the panels, placed in a
    grid of ``n_rows x n_cols``."""

    colour: Colouring
    runs: pd.DataFrame
    factors: list[str]
    panels: list[Panel]
    n_rows: int
    n_cols: int

    def finish_axes(self, axes: np.ndarray, last_step: float, y_label: str) -> None:
        """The shared step axis (from 0 to ``last_step``), the unused grid cells hidden, axis labels outside."""
        x_label = set_step_axis(axes[0, 0], step_scale(self.runs, last_step), last_step)  # the panels share x
        hide_unused(axes, self.panels)
        label_outer(axes, self.panels, x_label, y_label)


def step_panels(runs: pd.DataFrame, colour_by: str | None = None, exclude: Sequence[str] = ()) -> StepPanels:
    """The panels of a curve figure of ``runs`` (all of them: the colours follow every level of the study).

    ``colour_by``: the colour factor (default: the study's main factor); ``exclude``: factors that do not make
    panels (``lr_schedule``: those that do not change the schedule). FigureSkipped when no run has a result.
    """
    colour = colouring(runs, colour_by)
    usable = result_runs(runs)
    factors = panel_factors(usable, colour.factor, exclude)
    panels = split_panels(usable, factors)
    return StepPanels(colour, usable, factors, panels, *grid(panels, factors))


def finish_panel(
    ax: Axes, panel: Panel, colour: Colouring, x_max: float | None = None, fontsize: str = "medium"
) -> None:
    """What every curve panel shows besides its curves: each level's end of warmup (up to ``x_max``), the panel's
    title, a light grid."""
    draw_warmup_lines(ax, panel.runs, colour, x_max)
    ax.set_title(panel.title, fontsize=fontsize)
    ax.grid(True, alpha=0.3)
