"""The data side of the figures: which runs, which factors, which panels (metrics over steps: ``curves``).

No drawing here (no matplotlib): ``colours`` and ``style`` turn these into colours and axes, the figure modules
draw them.

- Factors: ``factor_columns`` (what a runs table can vary), ``varying``, ``main_factor`` (the factor the colour
  follows: the one with most levels among ``COLOUR_FACTORS``, ties in that order), ``panel_factors`` (the varying
  factors that split a figure into panels: all but the colour factor and the seed).
- Panels: ``Panel`` (a key and its runs), ``split_panels``, ``grid`` (placement: one block of rows per optimizer,
  every row wrapped at ``MAX_COLUMNS``).
- Text: ``format_value`` (``%g``: ``0.3``, never ``0.30000000000000004``), ``panel_title``, ``seeds_count``,
  ``seeds_phrase``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from analysis import stats
from analysis.load import STANDARD_FACTORS

MAX_COLUMNS = 4  # panels per row before a figure wraps
BANDS = {"range": "min–max", "iqr": "IQR"}
# Top-level keys a study may sweep besides the standard factors (they become runs-table columns when swept).
OTHER_FACTORS = ("lr_scale", "lr_sharpness_multiple", "warmup_start_fraction", "diverge_window", "untrained_margin")
# The factors the colour may follow, in order of preference when two have as many levels: what a warmup study
# compares (length, shape, norm position, budget, optimizer, ...). Never the learning rate (an x axis) or the seed.
COLOUR_FACTORS = (
    "warmup", "warmup_shape", "model.norm_position", "steps", "optimizer", "schedule", "skew", "model", "data",
    "batch_size", "warmup_start_fraction",
)  # fmt: skip
LR_FACTORS = ("lr", "lr_scale", "lr_sharpness_multiple")
# The order panel factors are named in: optimizer first (it sets the rows), then what a study varies most.
PANEL_ORDER = (
    "optimizer", "skew", "lr", "lr_scale", "lr_sharpness_multiple", "schedule", "warmup", "warmup_shape", "model",
    "data", "batch_size", "steps",
)  # fmt: skip


class FigureSkipped(Exception):
    """A figure does not apply to this study; ``str(error)`` says why in one line."""


def is_missing(value: Any) -> bool:
    """True for None and NaN."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def is_number(value: Any) -> bool:
    """True for an int or float (numpy's too), not for a bool or text."""
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)


def format_value(value: Any) -> str:
    """A factor value as text: ``100`` not ``100.0``; other numbers ``%g`` (``0.3``, not ``0.30000000000000004``)."""
    if is_missing(value):
        return "missing"
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if is_number(value):
        number = float(value)
        if number.is_integer() and abs(number) < 1e15:
            return str(int(number))
        return f"{number:g}"
    return str(value)


def panel_title(key: Mapping[str, Any], width: int = 42) -> str:
    """``"optimizer = adam, skew = cluster"``, broken into lines of at most ``width`` characters between factors
    so that neighbouring panels' titles never run into each other."""
    lines: list[str] = []
    for part in (f"{factor} = {format_value(value)}" for factor, value in key.items()):
        if lines and len(lines[-1]) + 2 + len(part) <= width:
            lines[-1] += ", " + part
        else:
            lines.append(part)
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------- factors


def factor_columns(runs: pd.DataFrame) -> list[str]:
    """The factor columns of a runs table: the standard factors, the other top-level keys a study can sweep
    (``lr_sharpness_multiple``, ...) and any swept dotted key (``optimizer.beta2``)."""
    dotted = [column for column in runs.columns if "." in column]
    return [column for column in [*STANDARD_FACTORS, *OTHER_FACTORS, *dotted] if column in runs.columns]


def varying(runs: pd.DataFrame, columns: Iterable[str]) -> list[str]:
    """The columns with more than one distinct value among the runs (missing counts as a value)."""
    return [column for column in columns if column in runs and runs[column].nunique(dropna=False) > 1]


def cell_factors(runs: pd.DataFrame) -> list[str]:
    """The varying factors other than seed: what tells cells apart (``Study.cell_factors``)."""
    return [f for f in varying(runs, factor_columns(runs)) if f != "seed"]


def main_factor(runs: pd.DataFrame, colour_by: str | None = None, exclude: Sequence[str] = ()) -> str:
    """The factor the colour follows: ``colour_by`` when given (a ValueError naming the factors when the runs
    table has no such column), else the varying factor of ``COLOUR_FACTORS`` with most levels (ties: the first
    in that order), else ``warmup``. ``exclude``: factors a figure uses otherwise (its x axis)."""
    if colour_by is not None and colour_by not in exclude:
        if colour_by not in runs.columns or colour_by == "seed":
            choices = ", ".join(f for f in cell_factors(runs)) or "(none varies)"
            raise ValueError(f"colour_by={colour_by!r} is not a factor of this study; factors: {choices}")
        return colour_by
    candidates = [f for f in varying(runs, COLOUR_FACTORS) if f not in exclude]
    if not candidates:
        return "warmup" if "warmup" in runs and "warmup" not in exclude else (cell_factors(runs) or ["warmup"])[0]
    return max(candidates, key=lambda f: (runs[f].nunique(dropna=False), -COLOUR_FACTORS.index(f)))


def panel_factors(runs: pd.DataFrame, colour: str = "warmup", exclude: Sequence[str] = ()) -> list[str]:
    """The varying factors that split a figure into panels: all but the colour factor, seed and ``exclude``, in
    PANEL_ORDER. ``optimizer`` is always one (a figure names its optimizer even when there is one)."""
    factors = [f for f in varying(runs, factor_columns(runs)) if f not in (colour, "seed", *exclude)]
    if "optimizer" in runs and "optimizer" not in (colour, *exclude) and "optimizer" not in factors:
        factors.append("optimizer")
    order = {name: rank for rank, name in enumerate(PANEL_ORDER)}
    return sorted(factors, key=lambda f: (order.get(f, len(order)), f))


def result_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs with a result (``completed``, ``diverged``), ``study``/``run`` as text; FigureSkipped if none."""
    usable = runs[runs["status"].isin(stats.RESULT_STATUSES)].copy()
    if usable.empty:
        raise FigureSkipped("no run completed or diverged: nothing to draw")
    usable["study"] = usable["study"].astype(str)
    usable["run"] = usable["run"].astype(str)
    return usable.reset_index(drop=True)


def rows_matching(table: pd.DataFrame, key: Mapping[str, Any]) -> pd.Series:
    """Rows of ``table`` whose columns equal ``key``'s values (a missing value matches a missing one)."""
    mask = pd.Series(True, index=table.index)
    for factor, value in key.items():
        mask &= table[factor].isna() if is_missing(value) else table[factor] == value
    return mask


def error_bars(table: pd.DataFrame, estimate: str) -> np.ndarray:
    """``[[below], [above]]`` distances from ``estimate`` to its interval; 0 where there is none (1 seed)."""
    below = (table[estimate] - table[f"{estimate}_low"]).to_numpy(dtype="float64", na_value=np.nan)
    above = (table[f"{estimate}_high"] - table[estimate]).to_numpy(dtype="float64", na_value=np.nan)
    return np.nan_to_num(np.vstack([below, above]), nan=0.0).clip(min=0.0)


def warmup_ends(runs: pd.DataFrame) -> pd.Series:
    """Each run's resolved warmup length in steps (``warmup_steps``; the ``warmup`` factor where that is missing)."""
    factor = pd.to_numeric(runs["warmup"], errors="coerce") if "warmup" in runs else pd.Series(np.nan, runs.index)
    if "warmup_steps" not in runs:
        return factor
    return pd.to_numeric(runs["warmup_steps"], errors="coerce").fillna(factor)


def numeric_column(runs: pd.DataFrame, column: str) -> pd.Series:
    """A column as float64, all NaN when the table lacks it (a summary measure no run computed)."""
    if column not in runs:
        return pd.Series(np.nan, index=runs.index)
    return pd.to_numeric(runs[column], errors="coerce").astype("float64")


# ---------------------------------------------------------------------------------------------------- panels


@dataclass
class Panel:
    """The runs of one panel: ``key`` holds the panel factors' values; ``row``/``col`` its place in the grid."""

    key: dict[str, Any]
    runs: pd.DataFrame
    row: int = 0
    col: int = 0

    @property
    def title(self) -> str:
        return panel_title(self.key)


def split_panels(runs: pd.DataFrame, factors: Sequence[str]) -> list[Panel]:
    """One Panel per combination of ``factors`` that has runs, in sorted order."""
    return [Panel(dict(key), cell) for key, cell in stats.cells(runs, factors)]


def grid(panels: list[Panel], factors: Sequence[str], max_columns: int = MAX_COLUMNS) -> tuple[int, int]:
    """Place panels in a grid of at most ``max_columns`` columns; returns (rows, columns).

    With several optimizers, each with several panels, each optimizer starts a new row (its panels wrapped over as
    many rows as it needs); otherwise the panels wrap, balanced: 5 panels make rows of 3 and 2, not 4 and 1.
    Panels keep their sorted order.
    """
    if not panels:
        return 1, 1
    blocks: dict[str, list[Panel]] = {}
    if "optimizer" in factors:
        for panel in panels:
            blocks.setdefault(str(panel.key["optimizer"]), []).append(panel)
    if len(blocks) > 1 and max(len(block) for block in blocks.values()) > 1:
        n_cols = min(max_columns, max(len(block) for block in blocks.values()))
        row = 0
        for block in blocks.values():
            for index, panel in enumerate(block):
                panel.row, panel.col = row + index // n_cols, index % n_cols
            row += math.ceil(len(block) / n_cols)
        return row, n_cols
    n_rows = math.ceil(len(panels) / max_columns)
    n_cols = math.ceil(len(panels) / n_rows)
    for index, panel in enumerate(panels):
        panel.row, panel.col = divmod(index, n_cols)
    return math.ceil(len(panels) / n_cols), n_cols


def seeds_per_cell(runs: pd.DataFrame, cell_by: Sequence[str]) -> tuple[int, int]:
    """The fewest and most runs in a cell of ``cell_by`` (the replicates each line summarises)."""
    counts = runs.groupby(list(cell_by), dropna=False, observed=True).size() if cell_by else pd.Series([len(runs)])
    return int(counts.min()), int(counts.max())


def seeds_count(runs: pd.DataFrame, cell_by: Sequence[str]) -> str:
    """The seeds per cell of ``cell_by`` in words: ``"5 seeds"``, ``"2–3 seeds"`` (cells differ), ``"1 seed"``."""
    low, high = seeds_per_cell(runs, cell_by)
    count = f"{low}–{high}" if low != high else str(high)
    return f"{count} seed{'s' if high > 1 else ''}"


def seeds_phrase(runs: pd.DataFrame, cell_by: Sequence[str], band: str | None = "range") -> str:
    """``"median over 3 seeds, band: min–max"``; ``"1 seed, no band"``; ``"median over 2–3 seeds, ..."``."""
    if seeds_per_cell(runs, cell_by)[1] == 1:
        return "1 seed" + (", no band" if band else "")
    return f"median over {seeds_count(runs, cell_by)}" + (f", band: {BANDS[band]}" if band else "")


def check_band(band: str) -> None:
    """A ValueError naming the choices when ``band`` is not one of BANDS."""
    if band not in BANDS:
        raise ValueError(f"band={band!r} is not one of {', '.join(BANDS)}: 'range' is min–max, 'iqr' 25th–75th")


def status_note(cell: pd.DataFrame) -> str:
    """``" (1 of 12 runs diverged, 2 untrained)"``, or "" when every run trained."""
    n_diverged = int((cell["status"] == "diverged").sum())
    n_untrained = int((cell["outcome"] == "untrained").sum()) if "outcome" in cell else 0
    parts = [f"{n_diverged} of {len(cell)} runs diverged"] if n_diverged else []
    if n_untrained:
        parts.append(f"{n_untrained} untrained" if parts else f"{n_untrained} of {len(cell)} runs untrained")
    return f" ({', '.join(parts)})" if parts else ""
