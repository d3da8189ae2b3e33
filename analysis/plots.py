"""Figures of a study: pure functions of its tables (``analysis.load``) that return matplotlib Figures.

Public API (what the report calls)::

    make_figures(study, out_dir, formats=("png", "svg"), only=None, options=None) -> RenderedFigures
    FIGURES: dict[str, FigureFunction]     # name -> function(runs, history, **options) -> Figure
    save(fig, path_without_suffix, formats=("png", "svg"), dpi=150) -> list[Path]
    warmup_colors(values) -> dict[value, colour]     warmup_label(value) -> "warmup = 100 steps"
    FigureSkipped(reason)                  # raised by a figure function that does not apply to the study

``make_figures`` renders every figure of ``FIGURES`` (or the names in ``only``) from ``study.runs`` and
``study.history``, saves ``<out_dir>/<name>.<format>`` for every format, and returns a ``RenderedFigures``: a
``dict`` from figure name to the path of its PNG (the first format when PNG is not asked for), plus
``.files`` (name -> every path written) and ``.skipped`` (name -> one-line reason, e.g. ``"learning rate does
not vary within an optimizer"``) for the figures that do not apply. ``options`` passes keyword options per
figure: ``{"time_to_target": {"metric": "eval/acc"}}``. An unknown name in ``only`` is a ValueError; any other
error of a figure propagates (a bug, not a skip).

A figure function takes the runs and history tables and keyword options, and returns a ``Figure`` built with
the object API (``matplotlib.figure.Figure``: no pyplot state, nothing to close, rendered by Agg on save). It
raises ``FigureSkipped`` when the study cannot show what the figure is about. Figures (name: what is drawn):

- ``convergence``: held-out loss (solid, with band) and train loss (dashed: trailing mean over the evaluation
  interval) against step; one panel per optimizer (rows) x other varying factors such as skew (columns).
- ``lr_schedule``: the learning rate the optimizer actually applied (``opt/lr``), one run per warmup.
- ``sensitivity``: final held-out loss (median, 95% bootstrap interval over seeds) and the share of seeds that
  diverged (labelled k/n) against learning rate (log), one line per warmup; only when the learning rate varies
  within an optimizer.
- ``early_overfitting``: held-out loss of the early group against the rest over the skew phase and after, per
  warmup; the gap at the end of the skew phase, the recovery step and (``skew=spurious``) cue reliance against
  warmup length, median with 95% bootstrap interval over seeds; only when some run has data skew.
- ``mechanism``: update-to-weight ratio, second-moment error, effective step (q50, band q10-q90) and
  sharpness against its stability limit ``2/lr`` (and the preconditioned pair) over the early steps; only
  when the probes were on (``probes=all``); a row is left out when no run logged its columns.
- ``time_to_target``: Kaplan-Meier fraction of seeds whose held-out loss reached the target by step t
  (``stats.time_to_target`` + ``stats.kaplan_meier``; default target ``stats.default_target``).

Conventions shared by every figure. Only runs with a result (``completed``, ``diverged``) are drawn. A line is
the median over the seeds of a cell at each step; the band is the min-max range over those seeds
(``band="iqr"``: 25th-75th percentile), and titles say which and over how many seeds; with one seed there is
no band and the title says "1 seed". A diverged run's values stop where it stopped: the median then runs over
the seeds still going, an x marks where the run stopped (on the panel's top edge when its exploding loss is off
the scale, which follows the other curves), and its warmup's legend entry says how many runs diverged. Each
warmup length has one colour in every figure (``warmup_colors``): no warmup is black, the others follow the
plasma colormap in order of length, and a dotted vertical line of that colour marks where the warmup ends.
Axes: steps are optimizer updates, losses in nats, a log scale where values span more than a factor 4.
"""

from __future__ import annotations

import math
import textwrap
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure, SubFigure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

from analysis import stats
from analysis.load import STANDARD_FACTORS

DPI = 150
PANEL_SIZE_IN = (3.6, 2.7)  # width, height of one panel in inches
MAX_COLUMNS = 4  # panels per row before a figure wraps
NO_WARMUP_COLOR = "#000000"
MISSING_COLOR = "#999999"
WARMUP_COLORMAP = "plasma"
WARMUP_COLOR_RANGE = (0.12, 0.82)  # the part of the colormap used: no near-black start, no pale-yellow end
STEP_LABEL = "step (optimizer updates)"
LOSS_LABEL = "loss (nats)"
BANDS = {"range": "min–max", "iqr": "IQR"}
# Factors that never split figures into panels: warmup is the line, seed the replicate.
LINE_FACTORS = ("warmup", "seed")
# The order panel factors are named in: optimizer first (it sets the rows), then what a study varies most.
PANEL_ORDER = (
    "optimizer", "skew", "lr", "lr_scale", "lr_sharpness_multiple", "schedule", "warmup_shape", "model", "data",
    "batch_size", "steps",
)  # fmt: skip
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">")
LINESTYLES = ("-", "--", "-.", ":")


class FigureSkipped(Exception):
    """A figure does not apply to this study; ``str(error)`` says why in one line."""


# A figure: ``(runs, history, **options) -> Figure``; raises ``FigureSkipped`` when it does not apply.
FigureFunction = Callable[..., Figure]


# ---------------------------------------------------------------------------------------------------- colours, labels


def warmup_colors(values: Iterable[Any]) -> dict[Any, str]:
    """One colour (hex) per warmup length, the same in every figure of a study.

    Warmup 0 is black; the other lengths, sorted, take evenly spaced colours of the plasma colormap from dark
    purple (shortest) to orange (longest); a missing value is grey. Pass every warmup value of the study
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


def color_of(colors: Mapping[Any, str], value: Any) -> str:
    """A warmup's colour from ``warmup_colors``' mapping (grey for a missing value)."""
    return MISSING_COLOR if is_missing(value) else colors[value]


def is_missing(value: Any) -> bool:
    """True for None and NaN."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def format_value(value: Any) -> str:
    """A factor value as text: ``100`` not ``100.0``, ``0.001`` and ``3e-05`` as Python writes them."""
    if is_missing(value):
        return "missing"
    if isinstance(value, float | np.floating) and float(value).is_integer() and abs(float(value)) < 1e15:
        return str(int(value))
    if isinstance(value, np.integer | np.floating):
        return str(value.item())
    return str(value)


def warmup_label(value: Any) -> str:
    """The legend text of a warmup length: ``"warmup = 100 steps"``."""
    return f"warmup = {format_value(value)} steps"


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


# ---------------------------------------------------------------------------------------------------- runs and panels


# Top-level keys a study may sweep besides the standard factors (they become runs-table columns when swept).
OTHER_FACTORS = ("lr_scale", "lr_sharpness_multiple", "warmup_start_fraction", "diverge_window", "untrained_margin")


def factor_columns(runs: pd.DataFrame) -> list[str]:
    """The factor columns of a runs table: the standard factors, the other top-level keys a study can sweep
    (``lr_sharpness_multiple``, ...) and any swept dotted key (``optimizer.beta2``)."""
    dotted = [column for column in runs.columns if "." in column]
    return [column for column in [*STANDARD_FACTORS, *OTHER_FACTORS, *dotted] if column in runs.columns]


def varying(runs: pd.DataFrame, columns: Iterable[str]) -> list[str]:
    """The columns with more than one distinct value among the runs (missing counts as a value)."""
    return [column for column in columns if column in runs and runs[column].nunique(dropna=False) > 1]


def panel_factors(runs: pd.DataFrame, exclude: Sequence[str] = ()) -> list[str]:
    """The varying factors that split a figure into panels: all but warmup, seed and ``exclude``, in PANEL_ORDER.

    ``optimizer`` is always one (a figure names its optimizer even when there is one).
    """
    factors = [f for f in varying(runs, factor_columns(runs)) if f not in (*LINE_FACTORS, *exclude)]
    if "optimizer" in runs and "optimizer" not in exclude and "optimizer" not in factors:
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


def grid(panels: list[Panel], factors: Sequence[str]) -> tuple[int, int]:
    """Place panels in a grid, one row per optimizer when several, else wrapped at MAX_COLUMNS; (rows, columns).

    Within a row, panels keep their sorted order (e.g. ``skew = cluster`` then ``skew = none``).
    """
    if "optimizer" in factors and len({str(p.key["optimizer"]) for p in panels}) > 1:
        rows: dict[str, list[Panel]] = {}
        for panel in panels:
            rows.setdefault(str(panel.key["optimizer"]), []).append(panel)
        for r, row_panels in enumerate(rows.values()):
            for c, panel in enumerate(row_panels):
                panel.row, panel.col = r, c
        return len(rows), max(len(row) for row in rows.values())
    n_rows = math.ceil(len(panels) / MAX_COLUMNS)
    n_cols = math.ceil(len(panels) / n_rows)  # balanced: 5 panels make rows of 3 and 2, not 4 and 1
    for index, panel in enumerate(panels):
        panel.row, panel.col = divmod(index, n_cols)
    return math.ceil(len(panels) / n_cols), n_cols


def seeds_per_cell(runs: pd.DataFrame, cell_by: Sequence[str]) -> tuple[int, int]:
    """The fewest and most runs in a cell of ``cell_by`` (the replicates each line summarises)."""
    counts = runs.groupby(list(cell_by), dropna=False, observed=True).size() if cell_by else pd.Series([len(runs)])
    return int(counts.min()), int(counts.max())


def seeds_phrase(runs: pd.DataFrame, cell_by: Sequence[str], band: str | None = "range") -> str:
    """``"median over 3 seeds, band: min–max"``; ``"1 seed, no band"``; ``"median over 2–3 seeds, ..."``."""
    low, high = seeds_per_cell(runs, cell_by)
    if high == 1:
        return "1 seed" + (", no band" if band else "")
    count = f"{low}–{high}" if low != high else str(high)
    return f"median over {count} seeds" + (f", band: {BANDS[band]}" if band else "")


def cell_factors(runs: pd.DataFrame) -> list[str]:
    """The varying factors other than seed: what tells cells apart (``Study.cell_factors``)."""
    return [f for f in varying(runs, factor_columns(runs)) if f != "seed"]


def check_band(band: str) -> None:
    """A ValueError naming the choices when ``band`` is not one of BANDS."""
    if band not in BANDS:
        raise ValueError(f"band={band!r} is not one of {', '.join(BANDS)}: 'range' is min–max, 'iqr' 25th–75th")


# ---------------------------------------------------------------------------------------------------- curves


@dataclass
class Curves:
    """One metric of some runs as a matrix: ``values[i, j]`` is run ``i``'s value at ``steps[j]`` (NaN: none)."""

    steps: np.ndarray
    values: np.ndarray
    runs: pd.DataFrame

    def of(self, mask: np.ndarray | pd.Series) -> np.ndarray:
        """The rows of the runs selected by a boolean mask over ``runs``."""
        return self.values[np.asarray(mask, dtype=bool)]


def metric_curves(runs: pd.DataFrame, history: pd.DataFrame, metric: str, through_step: float | None = None) -> Curves:
    """``metric`` of every run in ``runs`` over the steps where some run logged a finite value of it.

    Non-finite values (a diverging run's infinite loss) count as not logged, so lines stop there.
    """
    if metric not in history:
        return Curves(np.array([], dtype=np.int64), np.empty((len(runs), 0)), runs)
    keys = pd.MultiIndex.from_arrays([runs["study"].astype(str), runs["run"].astype(str)])
    rows = keys.get_indexer(pd.MultiIndex.from_arrays([history["study"].astype(str), history["run"].astype(str)]))
    steps = history["step"].to_numpy()
    values = history[metric].to_numpy(dtype="float64", na_value=np.nan)
    keep = (rows >= 0) & np.isfinite(values)
    if through_step is not None:
        keep &= steps <= through_step
    kept_steps = np.unique(steps[keep])
    matrix = np.full((len(runs), len(kept_steps)), np.nan)
    matrix[rows[keep], np.searchsorted(kept_steps, steps[keep])] = values[keep]
    return Curves(kept_steps, matrix, runs)


def has_data(history: pd.DataFrame, metric: str) -> bool:
    """True when ``metric`` is a history column with at least one finite value."""
    return metric in history and bool(np.isfinite(history[metric].to_numpy(dtype="float64", na_value=np.nan)).any())


def trailing_mean(values: np.ndarray, window: int) -> np.ndarray:
    """Per row, the mean of the finite values among the last ``window`` columns up to each column.

    NaN where the row itself is NaN (a run that stopped stays stopped) or the window has no finite value.
    """
    finite = np.isfinite(values)
    sums = np.cumsum(np.where(finite, values, 0.0), axis=1)
    counts = np.cumsum(finite, axis=1)
    sums[:, window:] = sums[:, window:] - sums[:, :-window]
    counts[:, window:] = counts[:, window:] - counts[:, :-window]
    with np.errstate(invalid="ignore", divide="ignore"):
        means = sums / counts
    return np.where(finite & (counts > 0), means, np.nan)


def seed_summary(values: np.ndarray, band: str = "range") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Median, band low and band high over the rows (seeds) at each column; NaN where no seed has a value.

    ``band="range"``: min and max; ``band="iqr"``: 25th and 75th percentiles (linear interpolation).
    """
    quantiles = (0.0, 1.0) if band == "range" else (0.25, 0.75)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN column: a step no seed reached
        if values.shape[1] == 0:
            empty = np.empty(0)
            return empty, empty, empty
        median = np.nanmedian(values, axis=0)
        low, high = np.nanquantile(values, quantiles, axis=0)
    return median, low, high


def last_finite(steps: np.ndarray, row: np.ndarray) -> tuple[float, float] | None:
    """The step and value of a row's last finite value, or None."""
    finite = np.flatnonzero(np.isfinite(row))
    return (float(steps[finite[-1]]), float(row[finite[-1]])) if len(finite) else None


def eval_interval(history: pd.DataFrame) -> int:
    """The most common distance between evaluation steps (``eval_every``), from ``eval/loss``; 1 if unknown."""
    if not has_data(history, "eval/loss"):
        return 1
    logged = history.loc[np.isfinite(history["eval/loss"].to_numpy(dtype="float64", na_value=np.nan))]
    gaps = logged.groupby(["study", "run"], observed=True)["step"].diff().dropna()
    gaps = gaps[gaps > 0]
    return int(gaps.mode().iloc[0]) if len(gaps) else 1


def draw_warmup_lines(
    ax: Axes, runs: pd.DataFrame, colors: Mapping[Any, str], x_max: float | None = None, **style: Any
) -> None:
    """A dotted vertical line in the warmup's colour where each warmup of the runs ends (``warmup_steps``)."""
    for warmup, cell in runs.groupby("warmup", observed=True, sort=True):
        end = warmup_ends(cell).median()
        if np.isfinite(end) and end > 0 and (x_max is None or end <= x_max):
            ax.axvline(end, color=color_of(colors, warmup), linestyle=":", linewidth=1.2, **style)


def warmup_ends(runs: pd.DataFrame) -> pd.Series:
    """Each run's resolved warmup length in steps (``warmup_steps``; the ``warmup`` factor where that is missing)."""
    factor = pd.to_numeric(runs["warmup"], errors="coerce")
    if "warmup_steps" not in runs:
        return factor
    return pd.to_numeric(runs["warmup_steps"], errors="coerce").fillna(factor)


def numeric_column(runs: pd.DataFrame, column: str) -> pd.Series:
    """A column as float64, all NaN when the table lacks it (a summary measure no run computed)."""
    if column not in runs:
        return pd.Series(np.nan, index=runs.index)
    return pd.to_numeric(runs[column], errors="coerce").astype("float64")


def use_log_scale(values: Iterable[np.ndarray], ratio: float = 4.0, positive_share: float = 1.0) -> bool:
    """True when at least ``positive_share`` of the finite values are positive and the largest positive one is
    over ``ratio`` times the smallest (a log axis leaves out the others: a rare negative eigenvalue)."""
    finite = [np.ravel(v)[np.isfinite(np.ravel(v))] for v in values]
    pooled = np.concatenate(finite) if finite else np.array([])
    positive = pooled[pooled > 0]
    if not len(positive) or len(positive) < positive_share * len(pooled):
        return False
    return bool(positive.max() > ratio * positive.min())


def diverged_note(cell: pd.DataFrame) -> str:
    """``" (1 of 12 runs diverged)"``, or "" when none did."""
    n_diverged = int((cell["status"] == "diverged").sum())
    return f" ({n_diverged} of {len(cell)} runs diverged)" if n_diverged else ""


def warmup_handles(runs: pd.DataFrame, colors: Mapping[Any, str], note_divergence: bool = True) -> list[Line2D]:
    """Legend handles, one line per warmup of the runs, naming its length (and how many seeds diverged)."""
    handles = []
    for warmup, cell in runs.groupby("warmup", observed=True, sort=True):
        label = warmup_label(warmup) + (diverged_note(cell) if note_divergence else "")
        handles.append(Line2D([], [], color=color_of(colors, warmup), linewidth=2, label=label))
    return handles


def new_figure(n_rows: int, n_cols: int, extra_width_in: float = 2.4, **subplots: Any) -> tuple[Figure, np.ndarray]:
    """A constrained-layout figure of ``n_rows x n_cols`` panels, with room on the right for the legend."""
    width = PANEL_SIZE_IN[0] * n_cols + extra_width_in
    height = PANEL_SIZE_IN[1] * n_rows + 0.8
    fig = Figure(figsize=(width, height), layout="constrained")
    axes = fig.subplots(n_rows, n_cols, squeeze=False, **subplots)
    return fig, axes


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


def set_log_x_at(ax: Axes, values: Iterable[float]) -> None:
    """A log x axis with a tick, labelled plainly, at each of ``values`` (the learning rates of a grid)."""
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(FixedLocator(sorted(set(values))))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())


def set_title(fig: Figure | SubFigure, what: str, how: str) -> None:
    """The figure's title: what is compared, then how it is summarised (seeds, band), wrapped to the width."""
    width_in = fig.get_figwidth() if isinstance(fig, Figure) else fig.figure.get_figwidth()
    characters = max(40, int(width_in * 72 / (0.6 * 12)))  # about 0.6 em per character at 12 pt ("large")
    lines = textwrap.wrap(what, characters) + textwrap.wrap(how, int(characters * 1.15))
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


# ---------------------------------------------------------------------------------------------------- convergence


def convergence(
    runs: pd.DataFrame,
    history: pd.DataFrame,
    *,
    band: str = "range",
    train_window_steps: int | None = None,
    log_y: bool | None = None,
) -> Figure:
    """Held-out and train loss against step, one line per warmup, one panel per optimizer (x skew, ...).

    Held-out loss (``eval/loss``, solid): the median over seeds at each evaluation step, with a band over seeds
    (``band``: ``"range"`` min–max, ``"iqr"`` 25th–75th percentile). Train loss (``train/loss``, dashed, no
    band): each run's trailing mean over ``train_window_steps`` updates (default: the evaluation interval, so
    the value at an evaluation step is the mean over the updates since the previous one), then the median over
    seeds. ``log_y`` defaults to a log scale when the loss spans more than a factor 4.
    """
    check_band(band)
    colors = warmup_colors(runs["warmup"])
    usable = result_runs(runs)
    if not has_data(history, "eval/loss") and not has_data(history, "train/loss"):
        raise FigureSkipped("no loss (eval/loss, train/loss) in the history")
    window = train_window_steps or eval_interval(history)
    factors = panel_factors(usable)
    panels = split_panels(usable, factors)
    n_rows, n_cols = grid(panels, factors)
    fig, axes = new_figure(n_rows, n_cols, sharex=True, sharey=True)
    held_out = metric_curves(usable, history, "eval/loss")
    train = metric_curves(usable, history, "train/loss")
    train = Curves(train.steps, trailing_mean(train.values, window), usable)
    drawn: list[np.ndarray] = []
    stops: list[tuple[Axes, float, float, str]] = []  # (panel, step, loss, colour) where a diverged run stopped
    for panel in panels:
        ax = axes[panel.row, panel.col]
        in_panel = usable.index.isin(panel.runs.index)
        for warmup, cell in panel.runs.groupby("warmup", observed=True, sort=True):
            color = color_of(colors, warmup)
            mask = in_panel & (usable["warmup"] == warmup).to_numpy()
            median, low, high = seed_summary(held_out.of(mask), band)
            ax.plot(held_out.steps, median, color=color, linewidth=1.8)
            if len(cell) > 1:
                ax.fill_between(held_out.steps, low, high, color=color, alpha=0.18, linewidth=0)
            train_median = seed_summary(train.of(mask), band)[0]
            ax.plot(train.steps, train_median, color=color, linewidth=1.0, linestyle="--", alpha=0.9)
            drawn += [median, train_median]
            for row in train.of(mask & (usable["status"] == "diverged").to_numpy()):
                point = last_finite(train.steps, row)
                if point is not None:
                    stops.append((ax, *point, color))
        draw_warmup_lines(ax, panel.runs, colors)
        ax.set_title(panel.title, fontsize="medium")
        ax.grid(True, alpha=0.3)
    if log_y if log_y is not None else use_log_scale(drawn):
        set_log_y(axes[0, 0])
    top = loss_ceiling(drawn[::2], drawn[1::2])
    if top is not None:
        axes[0, 0].set_ylim(top=top)  # the panels share y
    for ax, step, loss, color in stops:  # on the top edge when the loss that stopped the run is off the scale
        y = loss if top is None else min(loss, top)
        ax.plot(step, y, marker="x", color=color, markersize=8, markeredgewidth=2, clip_on=False)
    hide_unused(axes, panels)
    label_outer(axes, panels, STEP_LABEL, LOSS_LABEL)
    handles: list[Any] = warmup_handles(usable, colors)
    handles += [
        Line2D([], [], color="#444444", linewidth=1.8, label="held-out loss (eval/loss)"),
        Line2D(
            [], [], color="#444444", linewidth=1.0, linestyle="--", label=f"train loss, mean of last {window} steps"
        ),
    ]
    if seeds_per_cell(usable, cell_factors(usable))[1] > 1:
        handles.append(Patch(color="#444444", alpha=0.18, label=f"held-out {BANDS[band]} over seeds"))
    handles.append(Line2D([], [], color="#444444", linestyle=":", label="end of warmup"))
    if stops:
        handles.append(Line2D([], [], color="#444444", marker="x", linestyle="none", label="a run diverged here"))
    add_legend(fig, handles)
    set_title(fig, "Held-out and train loss by warmup length", seeds_phrase(usable, cell_factors(usable), band))
    return fig


def loss_ceiling(held_out: list[np.ndarray], train: list[np.ndarray], margin: float = 1.3) -> float | None:
    """Top of the loss axis: ``margin`` times the largest held-out median or starting train loss, so that the
    explosion of a diverging run (10 times its first loss, or more) does not flatten every other curve."""
    tops = [np.nanmax(v) for v in held_out if np.isfinite(v).any()]
    tops += [v[np.isfinite(v)][0] for v in train if np.isfinite(v).any()]
    return margin * float(max(tops)) if tops else None


# ---------------------------------------------------------------------------------------------------- lr schedule


def lr_schedule(runs: pd.DataFrame, history: pd.DataFrame) -> Figure:
    """The learning rate each warmup actually applied (``opt/lr``, as logged), one run per warmup and panel.

    Panels: one per optimizer (x schedule, warmup shape, steps when they vary); skew and seed do not change the
    schedule. The run drawn is the first completed one (lowest seed). When the peak learning rate varies within a
    panel the y axis is the rate as a fraction of each run's peak ``lr``.
    """
    colors = warmup_colors(runs["warmup"])
    usable = result_runs(runs)
    if not has_data(history, "opt/lr"):
        raise FigureSkipped("no learning rate (opt/lr) in the history")
    factors = [f for f in panel_factors(usable) if f not in ("skew", "lr", "data", "model")]
    panels = split_panels(usable, factors)
    n_rows, n_cols = grid(panels, [])
    fig, axes = new_figure(n_rows, n_cols, sharex=True)
    applied = metric_curves(usable, history, "opt/lr")
    relative = any(panel.runs["lr"].nunique() > 1 for panel in panels)
    for panel in panels:
        ax = axes[panel.row, panel.col]
        groups = list(panel.runs.groupby("warmup", observed=True, sort=True))
        for order, (warmup, cell) in enumerate(groups):
            index = cell.assign(rank=cell["status"].map(status_rank)).sort_values(["rank", "seed"]).index[0]
            row = applied.values[usable.index.get_loc(index)]
            if relative:
                row = row / float(usable.loc[index, "lr"])
            width = underneath_width(order, len(groups))
            ax.plot(applied.steps, row, color=color_of(colors, warmup), linewidth=width, solid_capstyle="butt")
        draw_warmup_lines(ax, panel.runs, colors)
        ax.set_title(panel.title, fontsize="medium")
        ax.set_ylim(bottom=0)
        ax.grid(True, alpha=0.3)
        ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
    hide_unused(axes, panels)
    label_outer(axes, panels, STEP_LABEL, "learning rate / peak" if relative else "learning rate")
    handles: list[Any] = warmup_handles(usable, colors, note_divergence=False)
    handles.append(Line2D([], [], color="#444444", linestyle=":", label="end of warmup"))
    add_legend(fig, handles)
    set_title(fig, "Learning rate applied (opt/lr) by warmup length", "one run per warmup, as logged")
    return fig


def underneath_width(order: int, count: int, thinnest: float = 1.4, extra: float = 1.6) -> float:
    """Line width of the ``order``-th of ``count`` lines drawn in warmup order: the first (shortest warmup) widest,
    so that where lines coincide (the same peak rate, all at fraction 0) each still shows under the next."""
    return thinnest + extra * (count - 1 - order) / max(count - 1, 1)


def status_rank(status: str) -> int:
    """Sort key preferring a completed run over a diverged one."""
    return 0 if status == "completed" else 1


# ---------------------------------------------------------------------------------------------------- sensitivity


def sensitivity(runs: pd.DataFrame, history: pd.DataFrame, *, metric: str = "final_eval_loss") -> Figure:
    """Final held-out loss and the share of seeds that did not train against peak learning rate, one line per warmup.

    Does warmup widen the range of usable learning rates? Top: ``metric`` (default ``final_eval_loss``), median
    over the seeds that did not diverge with its 95% percentile bootstrap interval (``stats.aggregate``);
    a cell where every seed diverged is an x on the top edge of the panel. Bottom: the share of seeds whose outcome
    is not ``trained`` (untrained: no better than chance, or diverged; ``not_trained_rate``), each non-zero share
    labelled ``k/n`` (with few seeds a count says more than an interval). x: learning rate, log scale. One panel
    per optimizer (x other varying factors); raises FigureSkipped when no panel has two learning rates.
    """
    colors = warmup_colors(runs["warmup"])
    usable = result_runs(runs)
    factors = panel_factors(usable, exclude=("lr",))
    panels = [p for p in split_panels(usable, factors) if p.runs["lr"].nunique() > 1]
    if not panels:
        raise FigureSkipped("learning rate does not vary within an optimizer: no sensitivity curve")
    by = [*factors, "warmup", "lr"]
    summary = stats.aggregate(usable, metric, by)
    divergence = not_trained_rate(usable, by)
    fig, axes = new_figure(2, len(panels), sharex="col", height_ratios=(2, 1))
    fig.set_figheight(PANEL_SIZE_IN[1] * 1.6 + 0.8)
    offsets = jitter_factors(usable["warmup"].unique())
    for col, panel in enumerate(panels):
        top, bottom = axes[0, col], axes[1, col]
        in_panel = rows_matching(summary, panel.key)
        for warmup in sorted(panel.runs["warmup"].unique()):
            color = color_of(colors, warmup)
            cell = summary[in_panel & (summary["warmup"] == warmup)].sort_values("lr")
            top.errorbar(
                cell["lr"] * offsets[warmup],
                cell["median"],
                yerr=error_bars(cell, "median"),
                color=color,
                marker="o",
                markersize=4,
                capsize=2,
                linewidth=1.5,
            )
            all_diverged = cell[(cell["n"] == 0) & (cell["n_runs"] > 0)]
            if len(all_diverged):  # (an empty unclipped line would break constrained layout on a second draw)
                top.plot(
                    all_diverged["lr"] * offsets[warmup],
                    np.full(len(all_diverged), 1.0),
                    linestyle="none",
                    marker="x",
                    markersize=9,
                    markeredgewidth=2,
                    color=color,
                    transform=top.get_xaxis_transform(),  # x in data, y in axes: on the panel's top edge
                    clip_on=False,
                )
            rates = divergence[rows_matching(divergence, panel.key) & (divergence["warmup"] == warmup)]
            rates = rates.sort_values("lr")
            bottom.plot(rates["lr"] * offsets[warmup], rates["rate"], color=color, marker="o", markersize=4)
            for _, cell_rate in rates[rates["n_not_trained"] > 0].iterrows():
                bottom.annotate(
                    f"{cell_rate['n_not_trained']}/{cell_rate['n_runs']}",
                    (cell_rate["lr"] * offsets[warmup], cell_rate["rate"]),
                    textcoords="offset points",
                    xytext=(-4, -4),
                    ha="right",
                    va="top",
                    fontsize="small",
                    color=color,
                )
        set_log_x_at(bottom, panel.runs["lr"])
        if use_log_scale([summary.loc[in_panel, "median"].to_numpy(dtype="float64", na_value=np.nan)]):
            set_log_y(top)
        top.set_title(panel.title, fontsize="medium")
        bottom.set_ylim(-0.08, 1.08)
        bottom.set_xlabel("peak learning rate (log scale)")
        for ax in (top, bottom):
            ax.grid(True, alpha=0.3)
        if col == 0:
            top.set_ylabel(f"{metric_name(metric)} (nats)" if metric.endswith("loss") else metric_name(metric))
            bottom.set_ylabel("not trained (share)")
    handles: list[Any] = warmup_handles(usable, colors, note_divergence=False)
    handles.append(
        Line2D([], [], color="#444444", marker="x", linestyle="none", markersize=8, label="every seed diverged")
    )
    add_legend(fig, handles)
    low, high = seeds_per_cell(usable, [*factors, "warmup", "lr"])
    count = f"{low}–{high}" if low != high else str(high)
    how = f"{count} seed{'s' if high > 1 else ''} per cell; loss: "
    how += "median of the seeds that did not diverge, bars: 95% bootstrap CI" if high > 1 else "of the one seed"
    set_title(fig, "Learning-rate sensitivity by warmup length", how)
    return fig


def not_trained_rate(runs: pd.DataFrame, by: Sequence[str]) -> pd.DataFrame:
    """Per cell of ``by``: ``n_runs``, ``n_not_trained`` (outcome ``untrained`` or ``diverged``; records without an
    outcome: diverged ones) and ``rate = n_not_trained / n_runs``."""
    if "outcome" in runs and runs["outcome"].notna().any():
        failed = runs["outcome"].astype("object") != "trained"
    else:
        failed = runs["status"] == "diverged"
    frame = runs.assign(_failed=failed.to_numpy())
    grouped = frame.groupby(list(by), dropna=False, observed=True)["_failed"].agg(["sum", "count"]).reset_index()
    grouped = grouped.rename(columns={"sum": "n_not_trained", "count": "n_runs"})
    grouped["n_not_trained"] = grouped["n_not_trained"].astype(int)
    grouped["rate"] = grouped["n_not_trained"] / grouped["n_runs"]
    return grouped


def metric_name(metric: str) -> str:
    """A summary metric's name in words: ``final_eval_loss`` -> ``final held-out loss``."""
    names = {"final_eval_loss": "final held-out loss", "final_eval_acc": "final held-out accuracy"}
    return names.get(metric, metric.replace("_", " "))


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
    return np.nan_to_num(np.vstack([below, above]), nan=0.0)


def jitter_factors(warmups: Iterable[Any], spread: float = 0.04) -> dict[Any, float]:
    """Multiplicative x offsets (log axis) that keep the points of different warmups from hiding each other."""
    ordered = sorted(w for w in warmups if not is_missing(w))
    middle = (len(ordered) - 1) / 2
    offsets = {w: float(10 ** (spread * (i - middle))) for i, w in enumerate(ordered)}
    offsets.update({w: 1.0 for w in warmups if is_missing(w)})
    return offsets


# ------------------------------------------------------------------------------------------------ early over-fitting

EARLY_SUMMARIES = (
    ("skew_gap_end", "gap at end of skew phase (nats)", "rest − early held-out loss at the end of the skew phase"),
    ("rest_recovery_step", "recovery step (steps)", "first step the rest group's loss stays near its final value"),
    ("cue_reliance_end", "cue reliance (accuracy)", "early acc − cue-flipped acc at the end of the skew phase"),
)


def early_overfitting(runs: pd.DataFrame, history: pd.DataFrame, *, through_steps: float | None = None) -> Figure:
    """Held-out loss of the early group against the rest, and the early over-fitting measures, by warmup.

    Top: ``eval/early/loss`` (solid) and ``eval/rest/loss`` (dashed), median over seeds, through
    ``through_steps`` (default: twice the end of the skew phase, ``skew_end_step``); the skew phase is shaded.
    Bottom: ``skew_gap_end``, ``rest_recovery_step`` and, when some run measured it (``skew=spurious``),
    ``cue_reliance_end`` against warmup length: median over seeds with its 95% percentile bootstrap interval
    (``stats.aggregate``), one line per panel of the top row.
    """
    colors = warmup_colors(runs["warmup"])
    usable = result_runs(runs)
    if "skew" not in usable or usable["skew"].isin(["none"]).all():
        raise FigureSkipped(
            "no data skew (skew=none in every run): early over-fitting needs skew=cluster|spurious|sorted"
        )
    if not has_data(history, "eval/early/loss") or not has_data(history, "eval/rest/loss"):
        raise FigureSkipped("no group-wise held-out loss (eval/early/loss, eval/rest/loss) in the history")
    skew_end = numeric_column(usable, "skew_end_step")
    if through_steps is None:
        through_steps = 2 * float(skew_end.max()) if skew_end.notna().any() else None
    factors = panel_factors(usable)
    panels = split_panels(usable, factors)
    summaries = [s for s in EARLY_SUMMARIES if s[0] in usable and usable[s[0]].notna().any()]
    top_rows = math.ceil(len(panels) / MAX_COLUMNS)  # wrap the curves, balanced: 6 panels are 2 rows of 3
    top_cols = math.ceil(len(panels) / top_rows)
    n_cols = max(top_cols, len(summaries))
    size = (PANEL_SIZE_IN[0] * max(n_cols, 2) + 2.6, PANEL_SIZE_IN[1] * (top_rows + 1) + 1.2 + 0.4 * top_rows)
    fig = Figure(figsize=size, layout="constrained")
    subfigures = fig.subfigures(2, 1, squeeze=False, height_ratios=[top_rows + 0.4, 1.4])
    top_fig, bottom_fig = subfigures[0, 0], subfigures[1, 0]
    grid = top_fig.subplots(top_rows, top_cols, sharex=True, sharey=True, squeeze=False)
    for ax in grid.ravel()[len(panels) :]:
        ax.set_visible(False)
    top_axes = grid.ravel()[: len(panels)]
    early = metric_curves(usable, history, "eval/early/loss", through_steps)
    rest = metric_curves(usable, history, "eval/rest/loss", through_steps)
    for ax, panel in zip(top_axes, panels, strict=True):
        in_panel = usable.index.isin(panel.runs.index)
        end = numeric_column(panel.runs, "skew_end_step").median()
        if np.isfinite(end) and end > 0:
            ax.axvspan(0, end, color="#dddddd", alpha=0.6, linewidth=0)
        for warmup, _ in panel.runs.groupby("warmup", observed=True, sort=True):
            mask = in_panel & (usable["warmup"] == warmup).to_numpy()
            color = color_of(colors, warmup)
            ax.plot(early.steps, seed_summary(early.of(mask))[0], color=color, linewidth=1.8)
            ax.plot(rest.steps, seed_summary(rest.of(mask))[0], color=color, linewidth=1.4, linestyle="--")
        draw_warmup_lines(ax, panel.runs, colors, x_max=through_steps)
        ax.set_title(panel.title, fontsize="medium")
        ax.set_xlabel(STEP_LABEL)
        ax.grid(True, alpha=0.3)
    for ax in grid[:, 0]:
        ax.set_ylabel("held-out loss (nats)")
    if use_log_scale([seed_summary(c.values)[0] for c in (early, rest)]):
        set_log_y(top_axes[0])
    handles: list[Any] = warmup_handles(usable, colors)
    handles += [
        Line2D([], [], color="#444444", linewidth=1.8, label="early group (eval/early/loss)"),
        Line2D([], [], color="#444444", linewidth=1.4, linestyle="--", label="rest (eval/rest/loss)"),
        Patch(color="#dddddd", label="skew phase (early window)"),
        Line2D([], [], color="#444444", linestyle=":", label="end of warmup"),
    ]
    add_legend(top_fig, handles)
    phrase = seeds_phrase(usable, cell_factors(usable), None)
    set_title(top_fig, "Held-out loss of the early (skew-favoured) group vs the rest, by warmup length", phrase)
    draw_early_summaries(bottom_fig, usable, factors, panels, summaries, colors)
    return fig


def draw_early_summaries(
    fig: SubFigure,
    usable: pd.DataFrame,
    factors: list[str],
    panels: list[Panel],
    summaries: Sequence[tuple[str, str, str]],
    colors: Mapping[Any, str],
) -> None:
    """The bottom row of ``early_overfitting``: each summary measure against warmup, a line per panel."""
    if not summaries:
        note_in_panel(fig.subplots(), "no early over-fitting measures in the runs table")
        return
    axes = np.atleast_1d(fig.subplots(1, len(summaries), squeeze=False)[0])
    warmups = sorted(usable["warmup"].dropna().unique())
    position = {w: i for i, w in enumerate(warmups)}
    spread = min(0.06, 0.3 / max(len(panels), 1))  # x offset between the lines, so their bars do not hide
    handles: list[Any] = []
    for ax, (column, y_label, meaning) in zip(axes, summaries, strict=True):
        table = stats.aggregate(usable, column, [*factors, "warmup"])
        for index, panel in enumerate(panels):
            rows = table[rows_matching(table, panel.key)].sort_values("warmup")
            x = rows["warmup"].map(position).to_numpy(dtype="float64") + spread * (index - (len(panels) - 1) / 2)
            style = {"marker": MARKERS[index % len(MARKERS)], "linestyle": LINESTYLES[index % len(LINESTYLES)]}
            ax.plot(x, rows["median"], color="#555555", linewidth=1.0, label=panel.title, **style)
            bars = error_bars(rows, "median")
            ax.errorbar(x, rows["median"], yerr=bars, color="#555555", linestyle="none", capsize=2)
            point_colors = [color_of(colors, w) for w in rows["warmup"]]
            ax.scatter(x, rows["median"], c=point_colors, marker=style["marker"], s=36, zorder=3, edgecolors="#333333")
        ax.set_xticks(range(len(warmups)), [format_value(w) for w in warmups])
        ax.set_xlabel("warmup length (steps)")
        ax.set_ylabel(y_label)
        ax.set_title(meaning, fontsize="small")
        ax.grid(True, alpha=0.3)
        if column == "skew_gap_end":
            ax.axhline(0, color="#999999", linewidth=0.8)
    handles = axes[0].get_legend_handles_labels()[0]
    title = "line: " + ", ".join(factors)
    fig.legend(handles=handles, loc="outside right center", frameon=False, fontsize="small", title=title)
    phrase = seeds_phrase(usable, cell_factors(usable), None)
    interval = "" if phrase.startswith("1 seed") else ", bars: 95% bootstrap CI"
    set_title(fig, "Early over-fitting measures by warmup length", phrase + interval)


# ---------------------------------------------------------------------------------------------------- mechanism


@dataclass(frozen=True)
class MechanismRow:
    """One row of the mechanism figure: a metric, its y label, and optionally a band or a reference line."""

    metric: str
    y_label: str
    band: tuple[str, str] | None = None  # (low metric, high metric) drawn as a band around ``metric``
    reference: str | None = None  # a metric drawn dotted in the same colour (a stability limit)
    reference_label: str = ""
    log_y: bool = True
    absent_note: str = "not measured for these runs"


MECHANISM_ROWS = (
    MechanismRow("opt/update_ratio", "update / weight norm"),
    MechanismRow("probe/v_hat_rel_error", "second-moment rel. error", absent_note="no second moment (sgd, momentum)"),
    MechanismRow(
        "probe/eff_step/q50",
        "effective step lr/(√v̂+ε)",
        band=("probe/eff_step/q10", "probe/eff_step/q90"),
        absent_note="no second moment (sgd, momentum)",
    ),
    MechanismRow(
        "probe/sharpness",
        "sharpness λmax (top Hessian eig.)",
        reference="probe/sharpness_limit",
        reference_label="2/lr: gradient descent's stability limit",
    ),
    MechanismRow(
        "probe/precond_sharpness",
        "precond. sharpness",
        reference="probe/precond_sharpness_limit",
        reference_label="preconditioned stability limit",
        absent_note="no preconditioner (sgd, momentum)",
    ),
)


def mechanism(runs: pd.DataFrame, history: pd.DataFrame, *, through_steps: float | None = None) -> Figure:
    """Why warmup matters: the probes over the early steps, one line per warmup, one column per optimizer (x ...).

    Rows (each left out when no run logged it): update-to-weight ratio ``opt/update_ratio``; second-moment
    error ``probe/v_hat_rel_error``; effective step ``probe/eff_step/q50`` with the q10–q90 band (quantiles over
    coordinates, each the median over seeds); sharpness ``probe/sharpness`` with its stability limit
    ``probe/sharpness_limit = 2/lr`` dotted; preconditioned sharpness with its limit. Lines are medians over
    seeds. ``through_steps`` defaults to twice the longest warmup (all steps when no run warms up).
    Raises FigureSkipped when no ``probe/`` column has a value (the study ran with ``probes=none``).
    """
    colors = warmup_colors(runs["warmup"])
    usable = result_runs(runs)
    if not any(has_data(history, c) for c in history.columns if c.startswith("probe/")):
        raise FigureSkipped("the probes were off (no probe/ metric in the history): run with probes=all")
    rows = [row for row in MECHANISM_ROWS if has_data(history, row.metric)]
    if through_steps is None:
        longest = float(warmup_ends(usable).max())
        through_steps = 2 * longest if np.isfinite(longest) and longest > 0 else None
    factors = panel_factors(usable)
    panels = split_panels(usable, factors)
    fig, axes = new_figure(len(rows), len(panels), extra_width_in=3.2, sharex=True, sharey="row")
    fig.set_figheight(PANEL_SIZE_IN[1] * 0.85 * len(rows) + 0.8)
    for r, spec in enumerate(rows):
        curves = metric_curves(usable, history, spec.metric, through_steps)
        band = [metric_curves(usable, history, m, through_steps) for m in spec.band] if spec.band else []
        limit = metric_curves(usable, history, spec.reference, through_steps) if spec.reference else None
        for c, panel in enumerate(panels):
            ax = axes[r, c]
            in_panel = usable.index.isin(panel.runs.index)
            if np.isfinite(curves.of(in_panel)).any():
                draw_mechanism_panel(ax, usable, panel, in_panel, colors, curves, band, limit)
                draw_warmup_lines(ax, panel.runs, colors, x_max=through_steps)
                ax.grid(True, alpha=0.3)
            else:
                note_in_panel(ax, spec.absent_note)
                ax.tick_params(axis="y", which="both", left=False)
            if r == 0:
                ax.set_title(panel.title, fontsize="medium")
            if r == len(rows) - 1:
                ax.set_xlabel(STEP_LABEL)
            if c == 0:
                ax.set_ylabel(spec.y_label, fontsize="small")
        shown = [curves.values] + ([limit.values] if limit else [])
        if spec.log_y and use_log_scale(shown, ratio=1.0, positive_share=0.9):
            set_log_y(axes[r, 0])  # the row shares its y axis
    handles: list[Any] = warmup_handles(usable, colors)
    if any(row.band for row in rows):
        handles.append(Patch(color="#444444", alpha=0.15, label="effective step q10–q90 over coordinates"))
    if any(row.reference for row in rows):
        handles.append(Line2D([], [], color="#444444", linestyle="--", label="stability limit (2/lr; precond.)"))
    handles.append(Line2D([], [], color="#444444", linestyle=":", label="end of warmup"))
    add_legend(fig, handles)
    phrase = seeds_phrase(usable, cell_factors(usable), None)
    set_title(fig, "Mechanism probes over the early steps by warmup length", phrase)
    return fig


def draw_mechanism_panel(
    ax: Axes,
    usable: pd.DataFrame,
    panel: Panel,
    in_panel: np.ndarray,
    colors: Mapping[Any, str],
    curves: Curves,
    band: list[Curves],
    limit: Curves | None,
) -> None:
    """One panel of ``mechanism``: per warmup the median over seeds of the metric, of its band's edges (filled)
    and of its stability limit (dashed)."""
    for warmup, _ in panel.runs.groupby("warmup", observed=True, sort=True):
        mask = in_panel & (usable["warmup"] == warmup).to_numpy()
        color = color_of(colors, warmup)
        ax.plot(curves.steps, seed_summary(curves.of(mask))[0], color=color, linewidth=1.5, marker=".")
        if band:
            low, high = (seed_summary(edge.of(mask))[0] for edge in band)
            ax.fill_between(band[0].steps, low, high, color=color, alpha=0.15, linewidth=0)
        if limit is not None and len(limit.steps):
            ax.plot(limit.steps, seed_summary(limit.of(mask))[0], color=color, linewidth=1.0, linestyle="--")


# ---------------------------------------------------------------------------------------------------- time to target


def time_to_target(
    runs: pd.DataFrame, history: pd.DataFrame, *, metric: str = "eval/loss", target: float | None = None
) -> Figure:
    """Kaplan–Meier fraction of seeds whose ``metric`` reached ``target`` by step t, one line per warmup.

    ``stats.time_to_target`` times every run (a run that never reaches the target, or diverges first, is censored
    at its last logged step, marked +), ``stats.kaplan_meier`` turns each cell's times into the fraction reached.
    ``target`` defaults to ``stats.default_target`` over the study's cells (the best cell's median final value,
    loosened by 5%). Panels as in ``convergence``.
    """
    colors = warmup_colors(runs["warmup"])
    usable = result_runs(runs)
    if not has_data(history, metric):
        raise FigureSkipped(f"no {metric} in the history")
    factors = panel_factors(usable)
    by = [*factors, "warmup"]
    if target is None:
        try:
            target = stats.default_target(usable, history, metric, by)
        except ValueError as err:  # no completed run logged the metric
            raise FigureSkipped(str(err)) from err
    times = stats.time_to_target(usable, history, metric, target, by)
    curves = stats.kaplan_meier(times, by)
    last_step = float(history["step"].max())
    panels = split_panels(usable, factors)
    n_rows, n_cols = grid(panels, factors)
    fig, axes = new_figure(n_rows, n_cols, sharex=True, sharey=True)
    for panel in panels:
        ax = axes[panel.row, panel.col]
        in_panel = rows_matching(curves, panel.key)
        warmups = sorted(panel.runs["warmup"].unique())
        for order, warmup in enumerate(warmups):
            color = color_of(colors, warmup)
            curve = curves[in_panel & (curves["warmup"] == warmup)].sort_values("step")
            steps = np.concatenate([[0.0], curve["step"].to_numpy(dtype="float64"), [last_step]])
            fraction = curve["fraction_reached"].to_numpy(dtype="float64")
            fraction = np.concatenate([[0.0], fraction, fraction[-1:] if len(fraction) else [0.0]])
            ax.step(steps, fraction, where="post", color=color, linewidth=underneath_width(order, len(warmups)))
            censored = curve[curve["n_censored"] > 0]
            ax.plot(censored["step"], censored["fraction_reached"], "+", color=color, markersize=10, mew=1.5)
        draw_warmup_lines(ax, panel.runs, colors)
        ax.set_title(panel.title, fontsize="medium")
        ax.set_ylim(-0.03, 1.03)
        ax.grid(True, alpha=0.3)
    hide_unused(axes, panels)
    label_outer(axes, panels, STEP_LABEL, "fraction of seeds at target")
    handles: list[Any] = warmup_handles(usable, colors)
    handles.append(Line2D([], [], color="#444444", marker="+", linestyle="none", label="censored (never reached)"))
    handles.append(Line2D([], [], color="#444444", linestyle=":", label="end of warmup"))
    add_legend(fig, handles)
    low, high = seeds_per_cell(usable, by)
    seeds = f"{low}–{high}" if low != high else str(high)
    relation = "≥" if stats.higher_is_better(metric) else "≤"
    unit = " nats" if metric.endswith("loss") else ""
    set_title(
        fig,
        f"Time to {metric} {relation} {target:.3g}{unit}, by warmup length",
        f"Kaplan–Meier fraction of seeds that reached it, {seeds} seed{'s' if high > 1 else ''} per cell",
    )
    return fig


# ---------------------------------------------------------------------------------------------------- registry, saving

FIGURES: dict[str, FigureFunction] = {
    "convergence": convergence,
    "lr_schedule": lr_schedule,
    "sensitivity": sensitivity,
    "early_overfitting": early_overfitting,
    "mechanism": mechanism,
    "time_to_target": time_to_target,
}


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
) -> RenderedFigures:
    """Render every applicable figure of ``FIGURES`` (or those named in ``only``) to ``out_dir``.

    Returns a RenderedFigures: ``{name: <out_dir>/<name>.png}`` (the first format when PNG is not among
    ``formats``) for the figures drawn, with ``.files`` (every file written per figure) and ``.skipped``
    (``{name: reason}`` for a figure that does not apply, e.g. ``"sensitivity"`` in a study of one learning
    rate). ``options`` gives keyword options per figure name. An unknown name in ``only`` is a ValueError.
    """
    names = list(FIGURES) if only is None else list(only)
    unknown = [name for name in names if name not in FIGURES]
    if unknown:
        raise ValueError(f"unknown figure {', '.join(unknown)}: choose from {', '.join(FIGURES)}")
    rendered = RenderedFigures()
    for name in names:
        try:
            fig = FIGURES[name](study.runs, study.history, **dict((options or {}).get(name, {})))
        except FigureSkipped as skipped:
            rendered.skipped[name] = str(skipped)
            continue
        paths = save(fig, Path(out_dir) / name, formats)
        rendered.files[name] = paths
        rendered[name] = next((p for p in paths if p.suffix == ".png"), paths[0])
    return rendered
