"""Colours, markers and legend labels: one per level of the factor the colour follows (``Colouring``).

The colour follows one factor per study: the study's main factor (``tables.main_factor``: warmup length, or the
warmup shape, norm position, budget, optimizer, ... when that has more levels), or the one named with
``colour_by`` (``python -m analysis --colour-by``). Its control level (no warmup, ``none``) is black and is drawn
last, on top; numbers (warmup lengths, budgets) follow the plasma colormap in order, names take the Okabe–Ito
colour-blind-safe palette; every level also has its own marker.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.lines import Line2D

from analysis.plots.tables import format_value, is_missing, is_number, main_factor, status_note

NO_WARMUP_COLOR = "#000000"
MISSING_COLOR = "#999999"
WARMUP_COLORMAP = "plasma"
WARMUP_COLOR_RANGE = (0.12, 0.82)  # the part of the colormap used: no near-black start, no pale-yellow end
OKABE_ITO = ("#E69F00", "#56B4E9", "#009E73", "#0072B2", "#D55E00", "#CC79A7", "#F0E442")
CONTROL_VALUES = ("none", "0")  # the level drawn black: no warmup, no skew
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">")
FACTOR_NAMES = {
    "warmup": "warmup length",
    "warmup_shape": "warmup shape",
    "model.norm_position": "norm position",
    "steps": "step budget",
}


def warmup_colors(values: Iterable[Any]) -> dict[Any, str]:
    """One colour (hex) per warmup length (or any number), the same in every figure of a study.

    Warmup 0 is black; the other lengths, sorted, take evenly spaced colours of the plasma colormap from dark
    purple (shortest) to orange (longest); a missing value is grey. Pass every value of the study
    (``runs["warmup"]``), not those of a subset, so that a figure of some runs keeps the colours of the others.
    """
    values = list(values)
    distinct = list(dict.fromkeys(v for v in values if not is_missing(v)))
    positive = sorted(v for v in distinct if float(v) != 0)
    colormap = matplotlib.colormaps[WARMUP_COLORMAP]
    low, high = WARMUP_COLOR_RANGE
    positions = np.linspace(low, high, len(positive)) if len(positive) > 1 else [(low + high) / 2]
    colors: dict[Any, str] = {v: NO_WARMUP_COLOR for v in distinct if float(v) == 0}
    colors.update({v: matplotlib.colors.to_hex(colormap(p)) for v, p in zip(positive, positions, strict=False)})
    if any(is_missing(v) for v in values):
        colors[math.nan] = MISSING_COLOR
    return colors


def factor_colors(values: Iterable[Any]) -> dict[Any, str]:
    """One colour per level of any factor: numbers as ``warmup_colors``; names in sorted order from the
    Okabe–Ito palette, with ``none`` black; a missing value grey."""
    values = list(values)
    present = [v for v in values if not is_missing(v)]
    if present and all(is_number(v) for v in present):
        return warmup_colors(values)
    names = sorted(dict.fromkeys(present), key=str)
    others = [v for v in names if str(v) not in CONTROL_VALUES]
    colors: dict[Any, str] = {v: NO_WARMUP_COLOR for v in names if str(v) in CONTROL_VALUES}
    colors.update({v: OKABE_ITO[i % len(OKABE_ITO)] for i, v in enumerate(others)})
    if len(present) < len(values):
        colors[math.nan] = MISSING_COLOR
    return colors


def color_of(colors: Mapping[Any, str], value: Any) -> str:
    """A level's colour from ``warmup_colors``' or ``factor_colors``' mapping (grey for a missing value)."""
    return MISSING_COLOR if is_missing(value) else colors[value]


def warmup_label(value: Any) -> str:
    """The legend text of a warmup length: ``"warmup = 100 steps"``."""
    return f"warmup = {format_value(value)} steps"


def factor_name(factor: str) -> str:
    """A factor in words for titles: ``warmup_shape`` -> ``warmup shape``."""
    return FACTOR_NAMES.get(factor, factor)


@dataclass
class Colouring:
    """The factor the colour follows in a figure, one colour, marker and legend label per level."""

    factor: str
    colors: dict[Any, str]
    labels: dict[Any, str]

    @property
    def title(self) -> str:
        """What the colour means, for a figure's title: ``"colour: warmup length"``."""
        return f"colour: {self.name}"

    @property
    def name(self) -> str:
        """The colour factor in words, for the legend's title: ``"warmup length"``."""
        return factor_name(self.factor)

    def of(self, value: Any) -> str:
        return color_of(self.colors, value)

    def label(self, value: Any) -> str:
        return self.labels.get(value, format_value(value))

    def levels(self) -> list[Any]:
        """The levels in legend order: the control (black) first, then sorted."""
        return list(self.colors)

    def zorder(self, rank: int) -> int:
        """Drawing order of the level at legend place ``rank``: the control (0) on top, every line above bands (1)."""
        return 3 + len(self.colors) - rank

    def marker(self, value: Any) -> str:
        levels = self.levels()
        return MARKERS[levels.index(value) % len(MARKERS)] if value in levels else "o"

    def groups(self, runs: pd.DataFrame) -> Iterator[tuple[int, Any, pd.DataFrame]]:
        """``(rank, level, runs)`` for each level among ``runs`` in drawing order: the last level first and the
        control last, so that it is drawn on top of the others (``rank``: its place in the legend order)."""
        levels = self.levels()
        for rank in reversed(range(len(levels))):
            mask = self.mask(runs, levels[rank])
            if mask.any():
                yield rank, levels[rank], runs[mask]

    def mask(self, runs: pd.DataFrame, value: Any) -> np.ndarray:
        column = runs[self.factor]
        return (column.isna() if is_missing(value) else column == value).to_numpy()

    def handles(self, runs: pd.DataFrame, note_status: bool = True, markers: bool = False) -> list[Line2D]:
        """Legend handles, one per level of the runs (and, with ``note_status``, how many diverged/untrained)."""
        handles = []
        for value in self.levels():
            cell = runs[self.mask(runs, value)]
            if cell.empty:
                continue
            label = self.label(value) + (status_note(cell) if note_status else "")
            marker = self.marker(value) if markers else None
            handles.append(Line2D([], [], color=self.of(value), linewidth=2, marker=marker, label=label))
        return handles


def colouring(runs: pd.DataFrame, colour_by: str | None = None, exclude: Sequence[str] = ()) -> Colouring:
    """The Colouring of a study's runs (all of them: a figure of some runs keeps the colours of the others)."""
    factor = main_factor(runs, colour_by, exclude)
    colors = factor_colors(runs[factor]) if factor in runs else {}
    labels: dict[Any, str] = {}
    for value in colors:
        cell = runs[(runs[factor].isna() if is_missing(value) else runs[factor] == value)] if factor in runs else runs
        if factor == "warmup":
            no_warmup = "warmup_shape" in cell and (cell["warmup_shape"].astype(str) == "none").all()
            labels[value] = "no warmup (warmup_shape = none)" if no_warmup and len(cell) else warmup_label(value)
        elif factor == "warmup_shape" and str(value) == "none":
            labels[value] = "none (no warmup)"
        else:
            labels[value] = format_value(value)  # the legend's title names the factor
    return Colouring(factor, colors, labels)
