"""Figures of the regime finder (``analysis.regime``): the lr x warmup phase diagram and the sensitivity curves.

Both are pure functions of the runs table that return a ``matplotlib.figure.Figure`` (object API, Agg on save), one
panel per setup (the ``by`` factors), laid out as ``analysis.plots`` lays out its panels.

- ``phase_diagram``: x = the lr grid (one column per grid rate, labelled with its value: equal widths on a log
  grid), y = warmup length (one row per value, no warmup at the bottom). Each cell is coloured by the majority
  outcome of its seeds (ties go to the worse outcome: diverged over untrained over trained) from the Okabe-Ito
  colour-blind-safe palette: bluish green = trained, grey = untrained, vermillion = diverged, white with hatching =
  no result. A cell whose seeds disagree is drawn pale, with the count of trained seeds (``3/5``) on its first line;
  the second line is the median final held-out loss over the seeds with a finite one. A thick black bar closes the
  contiguous stable range of each row at its right edge: ``lr*(W)``, where every seed is trained at that rate and
  all below it (dashed: censored, at least).
- ``sensitivity_curves``: the final held-out loss capped at ``L_init`` (diverged and missing runs count as the cap,
  as the LR sensitivity counts them) against lr (log), one line per warmup (median over seeds, band min-max), the
  cap as a dotted grey line; each panel's title carries the LR sensitivity per warmup (mean over seeds [95% CI]).
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle
from matplotlib.ticker import NullLocator

from analysis import plots, stats
from analysis import regime as R

matplotlib.use("Agg")

# Okabe & Ito (2008), safe for the common colour-vision deficiencies.
OUTCOME_COLORS = {R.TRAINED: "#009E73", R.UNTRAINED: "#A0A0A0", R.DIVERGED: "#D55E00"}
NO_RESULT_COLOR = "#FFFFFF"
MIXED_ALPHA = 0.45
WORSE_FIRST = (R.DIVERGED, R.UNTRAINED, R.TRAINED)  # tie-break order of the majority
CELL_WIDTH_IN, CELL_HEIGHT_IN = 0.62, 0.46
CENSORED_DASHES = (0, (1.2, 0.8))
MAX_WIDTH_IN = 16.0  # panels side by side up to this width (a phase diagram of a long lr grid: one per row)
SETUP_NAMES = ("optimizer", "model", "data", "skew")  # named in a lone panel's title when they are constant


def fixed_setup(runs: pd.DataFrame) -> dict[str, Any]:
    """The constant setup factors of the runs (``optimizer = sgd, model = mlp``), for a figure of one setup."""
    return {f: runs[f].dropna().iloc[0] for f in SETUP_NAMES if f in runs and runs[f].dropna().nunique() == 1}


def majority(found: Sequence[str]) -> str | None:
    """The most common outcome; a tie goes to the worse one (diverged, then untrained). None for no outcome."""
    counts = {o: sum(1 for f in found if f == o) for o in WORSE_FIRST}
    best = max(counts.values(), default=0)
    return next((o for o in WORSE_FIRST if counts[o] == best), None) if best else None


def text_color(background: str, alpha: float) -> str:
    """Black or white, whichever reads better on the background blended over white."""
    r, g, b = matplotlib.colors.to_rgb(background)
    r, g, b = (alpha * c + (1 - alpha) for c in (r, g, b))
    return "black" if 0.299 * r + 0.587 * g + 0.114 * b > 0.5 else "white"


def layout(
    panels: list[plots.Panel], by: Sequence[str], width_in: float, height_in: float, extra_width_in: float
) -> tuple[Figure, np.ndarray]:
    """A figure with a grid of panels of the given size (``plots.grid``'s placement, as many columns as fit in
    ``MAX_WIDTH_IN``) and room for a legend."""
    columns = max(1, min(plots.MAX_COLUMNS, int(MAX_WIDTH_IN // width_in)))
    n_rows, n_cols = plots.grid(panels, list(by), max_columns=columns)
    fig = Figure(figsize=(width_in * n_cols + extra_width_in, height_in * n_rows + 1.0), layout="constrained")
    axes = fig.subplots(n_rows, n_cols, squeeze=False)
    plots.hide_unused(axes, panels)
    return fig, axes


def prepared(runs: pd.DataFrame, lr_col: str, warmup_col: str) -> pd.DataFrame:
    table = runs.copy()
    table["_outcome"] = R.outcomes(runs)
    table["_lr"] = pd.to_numeric(table[lr_col], errors="coerce").astype("float64")
    return table


def phase_diagram(
    runs: pd.DataFrame, lr_col: str = "lr", by: Sequence[str] | None = None, warmup_col: str = "warmup"
) -> Figure:
    """The lr x warmup phase diagram, one panel per setup (module docstring)."""
    R.check_columns(runs, lr_col, warmup_col)
    by = R.setup_factors(runs, lr_col, warmup_col) if by is None else list(by)
    stable = R.stable_lr(runs, lr_col, by, warmup_col)
    table = prepared(runs, lr_col, warmup_col)
    panels = [plots.Panel(dict(key), cell) for key, cell in stats.cells(table, by)]
    n_lr = max(len(stable.grids[tuple(p.key.values())]) for p in panels)
    n_w = max(p.runs[warmup_col].nunique() for p in panels)
    fig, axes = layout(panels, by, max(3.0, CELL_WIDTH_IN * n_lr + 0.9), CELL_HEIGHT_IN * n_w + 1.1, 2.6)
    for panel in panels:
        ax = axes[panel.row, panel.col]
        grid = stable.grids[tuple(panel.key.values())]
        warmups = R.sorted_values(panel.runs[warmup_col])
        lr_stars = rows_matching(stable.all_seeds, panel.key)
        for y, warmup in enumerate(warmups):
            at_w = panel.runs[panel.runs[warmup_col] == warmup]
            n_seeds = at_w["seed"].nunique()
            for x, lr in enumerate(grid):
                draw_cell(ax, x, y, at_w[at_w["_lr"] == lr], n_seeds)
            star = lr_stars[lr_stars[warmup_col] == warmup]
            if len(star):
                value = star["lr_star"].iloc[0]
                edge = grid.index(value) + 0.5 if math.isfinite(value) else -0.5  # left edge: no stable rate
                style = CENSORED_DASHES if bool(star["censored"].iloc[0]) else "-"
                ax.plot(
                    [edge, edge],
                    [y - 0.5, y + 0.5],
                    color="black",
                    lw=3.2,
                    ls=style,
                    solid_capstyle="butt",
                    clip_on=False,
                )
        ax.set_xlim(-0.5, len(grid) - 0.5)
        ax.set_ylim(-0.5, len(warmups) - 0.5)
        ax.set_xticks(range(len(grid)), [f"{lr:.3g}" for lr in grid], rotation=45, ha="right", fontsize="small")
        ax.set_yticks(range(len(warmups)), [plots.format_value(w) for w in warmups], fontsize="small")
        ax.tick_params(length=0)
        for side in ax.spines.values():
            side.set_visible(False)
        ax.set_title(plots.panel_title(panel.key or fixed_setup(runs)) or "all runs", fontsize="medium")
        ax.set_xlabel(f"peak learning rate ({lr_col})")
        if panel.col == 0:
            ax.set_ylabel("warmup (steps)")
    handles: list[Any] = [Patch(facecolor=c, edgecolor="#444444", label=o) for o, c in OUTCOME_COLORS.items()]
    handles.append(Patch(facecolor=NO_RESULT_COLOR, edgecolor="#444444", hatch="///", label="no result"))
    handles.append(
        Patch(facecolor=OUTCOME_COLORS[R.TRAINED], alpha=MIXED_ALPHA, edgecolor="#444444", label="pale: seeds disagree")
    )
    handles.append(Line2D([], [], color="black", lw=3, label="lr*(W): all seeds trained\nup to here (left edge: none)"))
    handles.append(Line2D([], [], color="black", lw=3, ls=CENSORED_DASHES, label="lr*(W) censored\n(at least)"))
    fig.legend(handles=handles, loc="outside right center", frameon=False, fontsize="small", title="majority outcome")
    seeds = int(table.groupby([*by, warmup_col, "_lr"], dropna=False)["seed"].nunique().max())
    figure_title(
        fig,
        f"Phase diagram: outcome of {seeds} seeds per cell (colour: majority outcome; k/n: seeds trained, shown "
        "where the seeds disagree).",
        "Number: median final held-out loss. Bar: lr*(W), the end of the stable range.",
    )
    return fig


def draw_cell(ax: Any, x: int, y: int, rows: pd.DataFrame, n_seeds: int) -> None:
    """One cell of the phase diagram: majority colour (pale when mixed), ``k/n`` when mixed, median loss."""
    found = [o for o in rows["_outcome"] if o in OUTCOME_COLORS]
    winner = majority(found)
    if winner is None:
        ax.add_patch(Rectangle((x - 0.5, y - 0.5), 1, 1, facecolor=NO_RESULT_COLOR, edgecolor="#BBBBBB", hatch="///"))
        return
    n = max(n_seeds, len(found))
    mixed = len(set(found)) > 1 or len(found) < n
    alpha = MIXED_ALPHA if mixed else 1.0
    color = OUTCOME_COLORS[winner]
    ax.add_patch(Rectangle((x - 0.5, y - 0.5), 1, 1, facecolor=color, alpha=alpha, edgecolor="none"))
    ax.add_patch(Rectangle((x - 0.5, y - 0.5), 1, 1, facecolor="none", edgecolor="white", lw=1.0))
    losses = pd.to_numeric(rows[R.LOSS], errors="coerce").to_numpy(dtype="float64")
    losses = losses[np.isfinite(losses)]
    lines = []
    if mixed:
        lines.append(f"{sum(1 for f in found if f == R.TRAINED)}/{n}")
    if len(losses):
        lines.append(f"{np.median(losses):.2f}")
    ax.text(x, y, "\n".join(lines), ha="center", va="center", fontsize=6.5, color=text_color(color, alpha))


def rows_matching(table: pd.DataFrame, key: dict[str, Any]) -> pd.DataFrame:
    """The rows of ``table`` whose ``key`` factors equal the key's values."""
    mask = pd.Series(True, index=table.index)
    for factor, value in key.items():
        mask &= table[factor] == value
    return table[mask]


def sensitivity_curves(
    runs: pd.DataFrame, lr_col: str = "lr", by: Sequence[str] | None = None, warmup_col: str = "warmup"
) -> Figure:
    """Final held-out loss capped at ``L_init`` against lr, one line per warmup, per setup (module docstring)."""
    R.check_columns(runs, lr_col, warmup_col)
    by = R.setup_factors(runs, lr_col, warmup_col) if by is None else list(by)
    table = prepared(runs, lr_col, warmup_col)
    sensitivity = R.lr_sensitivity(runs, lr_col, by, warmup_col)
    colour = plots.colouring(runs, warmup_col)
    panels = [plots.Panel(dict(key), cell) for key, cell in stats.cells(table, by)]
    fig, axes = layout(panels, by, 4.4, 3.4, 2.2)
    for panel in panels:
        ax = axes[panel.row, panel.col]
        grid = sorted(float(v) for v in panel.runs["_lr"].unique())
        caps: list[float] = []
        lines: list[str] = []
        for warmup in R.sorted_values(panel.runs[warmup_col])[::-1]:  # no warmup last: on top of the others
            at_w = panel.runs[panel.runs[warmup_col] == warmup]
            curves = []
            for seed in R.sorted_values(at_w["seed"]):
                capped, l_init, _ = R.capped_losses(at_w[at_w["seed"] == seed], grid)
                curves.append(capped)
                caps.append(l_init)
            values = np.array(curves)
            color = colour.of(warmup)
            ax.plot(grid, np.nanmedian(values, axis=0), color=color, marker=colour.marker(warmup), ms=3.5, lw=1.6)
            if len(values) > 1:
                ax.fill_between(grid, np.nanmin(values, axis=0), np.nanmax(values, axis=0), color=color, alpha=0.18)
            row = rows_matching(sensitivity, panel.key)
            row = row[row[warmup_col] == warmup]
            if len(row):
                r = row.iloc[0]
                text = R.interval_text(r["sensitivity"], r["sensitivity_low"], r["sensitivity_high"], ".2f")
                lines.insert(0, f"W={plots.format_value(warmup)}: {text};")
        finite_caps = [c for c in caps if math.isfinite(c)]
        if finite_caps:
            ax.axhline(float(np.median(finite_caps)), color="#777777", ls=":", lw=1.2)
        lr_axis(ax, grid)
        title = plots.panel_title(panel.key or fixed_setup(runs)) or "all runs"
        ax.set_title(title + "\n" + joined_lines(["LR sensitivity:", *lines], 58).rstrip(";"), fontsize="small")
        ax.set_xlabel(f"peak learning rate ({lr_col})")
        if panel.col == 0:
            ax.set_ylabel("final held-out loss\n(capped at L_init)")
        ax.grid(alpha=0.3)
    handles: list[Any] = [
        Line2D([], [], color=colour.of(w), marker=colour.marker(w), label=colour.label(w))
        for w in R.sorted_values(runs[warmup_col])
    ]
    handles.append(Line2D([], [], color="#777777", ls=":", label="L_init (cap):\nloss at initialisation"))
    fig.legend(handles=handles, loc="outside right center", frameon=False, fontsize="small")
    figure_title(
        fig,
        "LR sensitivity: final held-out loss against lr (median over seeds, band min-max; diverged or missing = "
        "L_init).",
        "Sensitivity = E over log-uniform lr of [min(L, L_init) - best L of the same warmup], mean over seeds "
        "[95% bootstrap CI].",
    )
    return fig


def figure_title(fig: Figure, what: str, how: str) -> None:
    """The figure's title at a medium size, each sentence wrapped to the figure's width."""
    characters = max(50, int(fig.get_figwidth() * 72 / (0.55 * 10)))  # about 0.55 em per character at 10 pt
    lines = textwrap.wrap(what, characters) + textwrap.wrap(how, characters)
    fig.suptitle("\n".join(lines), fontsize="medium")


def joined_lines(parts: Sequence[str], width: int) -> str:
    """The parts joined by spaces, broken into lines of at most ``width`` characters between parts."""
    lines: list[str] = []
    for part in parts:
        if lines and len(lines[-1]) + 1 + len(part) <= width:
            lines[-1] += " " + part
        else:
            lines.append(part)
    return "\n".join(lines)


def lr_axis(ax: Any, grid: Sequence[float], most_labels: int = 8) -> None:
    """A log lr axis with a tick at every grid rate, labelled (3 significant digits) at most ``most_labels`` times."""
    ax.set_xscale("log")
    every = max(1, math.ceil(len(grid) / most_labels))
    ax.set_xticks(list(grid), [f"{lr:.3g}" if k % every == 0 else "" for k, lr in enumerate(grid)])
    ax.xaxis.set_minor_locator(NullLocator())
    ax.tick_params(axis="x", labelrotation=45, labelsize="small")
