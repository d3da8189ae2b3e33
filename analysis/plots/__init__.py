"""Figures of a study: pure functions of its tables (``analysis.load``) that return matplotlib Figures.

Public API (what the report calls)::

    make_figures(study, out_dir, formats=("png", "svg"), only=None, options=None, colour_by=None) -> RenderedFigures
    FIGURES: dict[str, FigureFunction]     # name -> function(runs, history, **options) -> Figure
    save(fig, path_without_suffix, formats=("png", "svg"), dpi=150) -> list[Path]
    warmup_colors(values) -> dict[value, colour]     warmup_label(value) -> "warmup = 100 steps"
    FigureSkipped(reason)                  # raised by a figure function that does not apply to the study

``make_figures`` renders every figure of ``FIGURES`` (or the names in ``only``) from ``study.runs`` and
``study.history``, saves ``<out_dir>/<name>.<format>`` for every format, and returns a ``RenderedFigures``: a
``dict`` from figure name to the path of its PNG (the first format when PNG is not asked for), plus
``.files`` (name -> every path written) and ``.skipped`` (name -> one-line reason, e.g. ``"learning rate does
not vary within an optimizer"``) for the figures that do not apply. ``options`` passes keyword options per
figure: ``{"time_to_target": {"metric": "eval/acc"}}``; ``colour_by`` names the factor the colour follows in
every figure (default: the study's main factor). An unknown name in ``only`` is a ValueError; any other error of
a figure propagates (a bug, not a skip).

Layout: the shared style in ``colours`` (the colour factor, its colours, markers and labels) and ``style`` (axes,
titles, legends, diverged marks, interval bars, saving); the data side in ``tables`` (factors, panels) and ``curves``
(metrics over steps, summaries over seeds); ``step_panels``, the frame of the curve figures (their panels, each
panel's warmup lines, title and grid, the shared step axis); and one module per figure, its docstring saying what
is drawn:

- ``convergence``: held-out and train loss against step, each with a band over seeds, the best step starred.
- ``lr_schedule``: the learning rate the optimizer actually applied (``opt/lr``).
- ``sensitivity``: final held-out loss (every seed counted, diverged at the chance-loss cap) and the seeds that
  did not train, against learning rate; only when the learning rate varies within an optimizer.
- ``early_overfitting``: the early (skew-favoured) group against the rest, and the early over-fitting measures;
  only when some run has data skew.
- ``mechanism``: the probes (update ratio, second moment, effective step, sharpness) over the early steps; only
  when the probes were on (``probes=all``).
- ``time_to_target``: Kaplan–Meier fraction of seeds whose held-out loss reached the target by step t.
- ``forest``: the paired effects against the control, one row per comparison (the report's findings).

Conventions shared by every figure (``colours``' and ``style``'s docstrings): the colour follows the study's main factor
(``tables.main_factor``) or ``colour_by``, and the title says which; only runs with a result are drawn; a line is
the median over the seeds of a cell, the band their range (or IQR); a diverged run is marked where it stopped.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

from analysis.plots.colours import Colouring, color_of, colouring, factor_colors, warmup_colors, warmup_label
from analysis.plots.convergence import convergence
from analysis.plots.curves import Curves, loss_ceiling, metric_curves, seed_summary, trailing_mean
from analysis.plots.early_overfitting import EARLY_SUMMARIES, early_overfitting
from analysis.plots.forest import forest
from analysis.plots.lr_schedule import lr_schedule
from analysis.plots.mechanism import MECHANISM_ROWS, MechanismRow, mechanism
from analysis.plots.sensitivity import capped_metric, not_trained_rate, sensitivity
from analysis.plots.style import DPI, FigureFunction, add_legend, hide_unused, new_figure, save, set_log_y, set_title
from analysis.plots.tables import (
    MAX_COLUMNS,
    FigureSkipped,
    Panel,
    cell_factors,
    format_value,
    grid,
    is_missing,
    main_factor,
    panel_factors,
    panel_title,
    split_panels,
)
from analysis.plots.time_to_target import time_to_target

__all__ = [
    "DPI", "EARLY_SUMMARIES", "FIGURES", "MAX_COLUMNS", "MECHANISM_ROWS", "Colouring", "Curves", "FigureFunction",
    "FigureSkipped", "MechanismRow", "Panel", "RenderedFigures", "StudyTables", "add_legend", "capped_metric",
    "cell_factors", "color_of", "colouring", "convergence", "early_overfitting", "factor_colors", "forest",
    "format_value", "grid", "hide_unused", "is_missing", "loss_ceiling", "lr_schedule", "main_factor",
    "make_figures", "mechanism", "metric_curves", "new_figure", "not_trained_rate", "panel_factors", "panel_title",
    "save", "seed_summary", "sensitivity", "set_log_y", "set_title", "split_panels", "time_to_target",
    "trailing_mean", "warmup_colors", "warmup_label",
]  # fmt: skip

FIGURES: dict[str, FigureFunction] = {
    "convergence": convergence,
    "lr_schedule": lr_schedule,
    "sensitivity": sensitivity,
    "early_overfitting": early_overfitting,
    "mechanism": mechanism,
    "time_to_target": time_to_target,
    "forest": forest,
}


class StudyTables(Protocol):
    """What ``make_figures`` reads of a study: its runs and history tables (``analysis.load.Study``)."""

    runs: pd.DataFrame
    history: pd.DataFrame


class RenderedFigures(dict[str, Path]):
    """``make_figures``' result: figure name -> path of its PNG; ``files`` every path; ``skipped`` name -> reason."""

    def __init__(self) -> None:
        super().__init__()
        self.files: dict[str, list[Path]] = {}
        self.skipped: dict[str, str] = {}


def make_figures(
    study: StudyTables,
    out_dir: str | Path,
    formats: Sequence[str] = ("png", "svg"),
    only: Iterable[str] | None = None,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    colour_by: str | None = None,
) -> RenderedFigures:
    """Render every applicable figure of ``FIGURES`` (or those named in ``only``) to ``out_dir``.

    Returns a RenderedFigures: ``{name: <out_dir>/<name>.png}`` (the first format when PNG is not among
    ``formats``) for the figures drawn, with ``.files`` (every file written per figure) and ``.skipped``
    (``{name: reason}`` for a figure that does not apply, e.g. ``"sensitivity"`` in a study of one learning
    rate). ``options`` gives keyword options per figure name; ``colour_by`` the factor the colour follows in
    every figure (a ValueError naming the factors when the study has no such factor). An unknown name in ``only``
    is a ValueError.
    """
    names = list(FIGURES) if only is None else list(only)
    unknown = [name for name in names if name not in FIGURES]
    if unknown:
        raise ValueError(f"unknown figure {', '.join(unknown)}: choose from {', '.join(FIGURES)}")
    if colour_by is not None:
        main_factor(study.runs, colour_by)  # an unknown factor stops here, before anything is drawn
    rendered = RenderedFigures()
    for name in names:
        try:
            fig = FIGURES[name](study.runs, study.history, colour_by=colour_by, **dict((options or {}).get(name, {})))
        except FigureSkipped as skipped:
            rendered.skipped[name] = str(skipped)
            continue
        paths = save(fig, Path(out_dir) / name, formats)
        rendered.files[name] = paths
        rendered[name] = next((p for p in paths if p.suffix == ".png"), paths[0])
    return rendered
