"""analysis.plots: every figure from a small real study, and from hand-made tables for the edge cases.

Edge cases real runs rarely give: one seed, a diverged run (NaN after it stops, every seed of a cell diverged),
a factor that does not vary (no sensitivity curve), no probes and no skew, a study whose main factor is not the
warmup length (the colour follows it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib.colors as mcolors
import numpy as np
import pandas as pd
import pytest
from matplotlib.axes import Axes
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure, SubFigure
from matplotlib.lines import Line2D

from analysis import plots
from analysis.load import Study, load_study
from analysis.plots.tables import seeds_count
from tests.conftest import run_ablate

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

# ---------------------------------------------------------------------------------------------------- helpers


def legend_texts(fig: Figure) -> list[str]:
    """Every legend entry of a figure, its subfigures and its axes."""
    texts = []
    containers: list[Figure | SubFigure] = [fig, *fig.subfigs]
    for container in containers:
        texts += [t.get_text() for legend in container.legends for t in legend.get_texts()]
    for ax in fig.get_axes():
        legend = ax.get_legend()
        if legend is not None:
            texts += [t.get_text() for t in legend.get_texts()]
    return texts


def legend_color(fig: Figure, label: str) -> str:
    """The colour of the legend handle whose text is ``label``, as hex."""
    for container in [fig, *fig.subfigs]:
        for legend in container.legends:
            for handle, text in zip(legend.legend_handles, legend.get_texts(), strict=True):
                if text.get_text().startswith(label):
                    return mcolors.to_hex(handle.get_color())  # type: ignore[union-attr]
    raise AssertionError(f"no legend entry {label!r} in {legend_texts(fig)}")


def xy(line: Line2D) -> tuple[np.ndarray, np.ndarray]:
    """A line's data as float arrays."""
    return np.asarray(line.get_xdata(), dtype=float), np.asarray(line.get_ydata(), dtype=float)


def line_colors(ax: Axes) -> set[str]:
    """The colours of the lines drawn in a panel."""
    return {mcolors.to_hex(line.get_color()) for line in ax.get_lines()}


def titles(fig: Figure) -> list[str]:
    """The figure's and its subfigures' titles."""
    return [f.get_suptitle() for f in [fig, *fig.subfigs] if f.get_suptitle()]


def assert_readable(fig: Figure) -> None:
    """A title, at least one labelled x and y axis, and every visible panel drawing something."""
    assert titles(fig), "figure has no title"
    visible = [ax for ax in fig.get_axes() if ax.axison]
    assert visible
    assert any(ax.get_xlabel() for ax in visible) and any(ax.get_ylabel() for ax in visible)
    for ax in visible:
        assert ax.get_lines() or ax.collections or ax.texts, f"empty panel {ax.get_title()!r}"


# ---------------------------------------------------------------------------------------------------- real study


@pytest.fixture(scope="module")
def real_study(tmp_path_factory: pytest.TempPathFactory) -> Study:
    """adam, warmup=0,20 x lr=0.001,0.01 x seed=0,1 with skew=cluster and every probe: 8 runs of 60 steps."""
    tmp = tmp_path_factory.mktemp("plots")
    sweep_dir = tmp / "study"
    done = run_ablate(
        "-m",
        "warmup=0,20",
        "lr=0.001,0.01",
        "seed=0,1",
        "optimizer=adam",
        "skew=cluster",
        "skew.steps=20",
        "probes=all",
        "probes.update_ratio_every=10",
        "probes.second_moment_every=10",
        "probes.second_moment_batches=2",
        "probes.sharpness_every=20",
        "probes.sharpness_iters=3",
        "probes.sharpness_examples=128",
        "probes.dead_relu_every=20",
        "steps=60",
        "eval_every=10",
        "data.n_train=512",
        "data.n_eval=256",
        "tracker=local",
        "tracker.progress=off",
        f"hydra.sweep.dir={sweep_dir}",
        cwd=tmp,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return load_study(sweep_dir)


@pytest.mark.slow
@pytest.mark.filterwarnings("error::UserWarning")  # e.g. "constrained_layout not applied": a collapsed figure
def test_make_figures_renders_every_figure_as_valid_png_and_svg(real_study: Study, tmp_path: Path) -> None:
    rendered = plots.make_figures(real_study, tmp_path / "figures")
    assert rendered.skipped == {}
    assert set(rendered) == set(plots.FIGURES)
    for name, png in rendered.items():
        assert png == tmp_path / "figures" / f"{name}.png"
        assert png.read_bytes().startswith(PNG_MAGIC)
        svg = png.with_suffix(".svg")
        assert rendered.files[name] == [png, svg]
        text = svg.read_text(encoding="utf-8")
        assert text.lstrip().startswith("<?xml") and "<svg" in text and text.rstrip().endswith("</svg>")


@pytest.mark.slow
@pytest.mark.parametrize("name", list(plots.FIGURES))
def test_real_figure_has_title_labels_and_warmup_legend(real_study: Study, name: str) -> None:
    fig = plots.FIGURES[name](real_study.runs, real_study.history)
    assert_readable(fig)
    texts = legend_texts(fig)
    assert "warmup = 20 steps" in texts
    assert "warmup = 0 steps" in texts or name == "forest"  # the forest's rows are the treatments; 0 is the zero
    assert "colour: warmup length" in " ".join(titles(fig))
    assert "2 seeds" in " ".join(titles(fig)) or name == "lr_schedule"


@pytest.mark.slow
def test_warmup_colour_is_the_same_in_every_figure(real_study: Study) -> None:
    expected = plots.warmup_colors(real_study.runs["warmup"])
    for name, function in plots.FIGURES.items():
        fig = function(real_study.runs, real_study.history)
        for warmup in (0, 20) if name != "forest" else (20,):
            assert legend_color(fig, plots.warmup_label(warmup)) == expected[warmup], (name, warmup)
    convergence = plots.convergence(real_study.runs, real_study.history)
    mechanism = plots.mechanism(real_study.runs, real_study.history)
    drawn = line_colors(convergence.axes[0]) & line_colors(mechanism.axes[0])
    assert {expected[0], expected[20]} <= drawn  # the lines themselves, not only the legends


@pytest.mark.slow
def test_real_mechanism_has_a_row_per_probe_and_sensitivity_a_panel_per_optimizer(real_study: Study) -> None:
    mechanism = plots.mechanism(real_study.runs, real_study.history)
    y_labels = [ax.get_ylabel() for ax in mechanism.axes if ax.get_ylabel()]
    assert len(y_labels) == 5  # update ratio, v_hat error, effective step, sharpness, preconditioned sharpness
    assert "over the first 40 of 60 steps" in mechanism.get_suptitle()  # the title says what the axis shows
    assert all(ax.get_lines() for ax in mechanism.axes if ax.axison)  # no empty panel
    assert mechanism.get_figwidth() * plots.DPI < 2500
    sensitivity = plots.sensitivity(real_study.runs, real_study.history)
    top = sensitivity.axes[0]
    assert top.get_xscale() == "log" and top.get_title() == "optimizer = adam"


# ---------------------------------------------------------------------------------------------------- hand-made tables

STEPS = 100
EVAL_EVERY = 10


def loss_curve(warmup: int, seed: int, lr: float) -> np.ndarray:
    """A made-up decreasing loss over ``STEPS + 1`` steps, slower with a longer warmup."""
    t = np.arange(STEPS + 1)
    return 0.3 + 2.0 * np.exp(-(t - 0.3 * warmup).clip(0) / (30 + 5 * seed)) * (1 + 0.1 * lr)


def make_tables(
    warmups: tuple[int, ...] = (0, 20),
    seeds: tuple[int, ...] = (0, 1),
    lrs: tuple[float, ...] = (0.1,),
    skew: str = "cluster",
    diverged: dict[tuple[int, int, float], int] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Runs and history tables shaped like ``load_study``'s; ``diverged`` maps (warmup, seed, lr) to the step
    at which that run diverged (its history stops there, its final loss is missing)."""
    diverged = diverged or {}
    runs, history = [], []
    for number, (warmup, seed, lr) in enumerate((w, s, lr) for w in warmups for s in seeds for lr in lrs):
        stop = diverged.get((warmup, seed, lr))
        loss = loss_curve(warmup, seed, lr)
        last = STEPS if stop is None else stop
        run: dict[str, Any] = {
            "study": "hand",
            "run": str(number),
            "status": "completed" if stop is None else "diverged",
            "optimizer": "sgd",
            "warmup": warmup,
            "lr": lr,
            "skew": skew,
            "seed": seed,
            "steps": STEPS,
            "warmup_steps": float(warmup),
            "final_eval_loss": float(loss[-1]) if stop is None else np.nan,
            "skew_end_step": 30.0,
            "skew_gap_end": 0.5 - 0.01 * warmup + 0.05 * seed,
            "rest_recovery_step": 60.0 + warmup,
            "diverged_step": np.nan if stop is None else float(stop),
        }
        runs.append(run)
        for step in range(last + 1):
            at_eval = step % EVAL_EVERY == 0 and (stop is None or step < last)
            train = float(loss[step]) if step < STEPS else np.nan
            if stop is not None and step == last - 1:
                train = 50.0  # the explosion before the stop
            if stop is not None and step == last:
                train = np.inf  # the loss that made the run stop
            history.append(
                {
                    "study": "hand",
                    "run": str(number),
                    "step": step,
                    "train/loss": train,
                    "opt/lr": lr * min(1.0, (step + 1) / warmup) if warmup else lr,
                    "eval/loss": float(loss[step]) + 0.05 if at_eval else np.nan,
                    "eval/early/loss": float(loss[step]) * 0.5 if at_eval else np.nan,
                    "eval/rest/loss": float(loss[step]) * 1.2 if at_eval else np.nan,
                }
            )
    history_table = pd.DataFrame(history)
    history_table["study"] = history_table["study"].astype("category")
    history_table["run"] = history_table["run"].astype("category")
    return pd.DataFrame(runs), history_table


def test_one_seed_has_no_band_and_says_so() -> None:
    runs, history = make_tables(seeds=(0,))
    fig = plots.convergence(runs, history)
    assert_readable(fig)
    assert "1 seed" in fig.get_suptitle() and "median over" not in fig.get_suptitle()
    assert not any(isinstance(c, PolyCollection) for ax in fig.axes for c in ax.collections)
    both = plots.convergence(*make_tables(seeds=(0, 1)))
    assert "median over 2 seeds, band: min–max" in both.get_suptitle()
    assert any(isinstance(c, PolyCollection) for ax in both.axes for c in ax.collections)


def test_a_diverged_run_stops_and_is_marked() -> None:
    runs, history = make_tables(lrs=(0.1, 1.0), diverged={(0, 1, 1.0): 25, (0, 0, 1.0): 40})
    fig = plots.convergence(runs, history)
    assert_readable(fig)
    texts = legend_texts(fig)
    assert "warmup = 0 steps (2 of 4 runs diverged)" in texts and "warmup = 20 steps" in texts
    markers = [line for ax in fig.axes for line in ax.get_lines() if line.get_marker() == "x"]
    assert sorted(xy(line)[0][0] for line in markers) == [24, 39]  # the last finite train loss
    top = fig.axes[0].get_ylim()[1]
    assert top < 5  # the explosion (50 nats) does not set the scale: 1.3 x the largest held-out median
    assert [xy(line)[1][0] for line in markers] == [top, top]  # drawn on the top edge instead
    panel = next(ax for ax in fig.axes if ax.get_title() == "optimizer = sgd, lr = 1")
    black = [line for line in panel.get_lines() if line.get_color() == "#000000" and line.get_marker() != "x"]
    held_out = xy(black[0])[1]
    assert np.isfinite(held_out[:3]).all() and np.isnan(held_out[-1])  # every seed stopped: the line stops


def test_a_diverged_mark_off_the_scale_stays_inside_the_panel_and_the_title_says_what_the_median_is_over() -> None:
    runs, history = make_tables(lrs=(0.1, 1.0), diverged={(0, 1, 1.0): 25, (0, 0, 1.0): 40})
    fig = plots.convergence(runs, history)
    fig.draw_without_rendering()
    for ax in fig.axes:
        edge = ax.transAxes.transform((0.0, 1.0))[1]  # the top of the panel, in display points
        for line in (line for line in ax.get_lines() if line.get_marker() == "x"):
            assert line.get_transform().transform(np.column_stack(xy(line)))[0, 1] < edge  # clear of the title
    assert "past an x, over the seeds still running" in fig.get_suptitle()
    assert "past an x" not in plots.convergence(*make_tables(lrs=(0.1, 1.0))).get_suptitle()


def test_lr_schedule_marks_a_diverged_run_and_scales_by_each_runs_peak() -> None:
    runs, history = make_tables(diverged={(0, 0, 0.1): 25, (0, 1, 0.1): 40})  # every run without warmup diverged
    fig = plots.lr_schedule(runs, history)
    markers = [line for line in fig.axes[0].get_lines() if line.get_marker() == "x"]
    assert [(xy(line)[0][0], line.get_color()) for line in markers] == [(25.0, "#000000")]  # the lowest seed's
    assert "a run diverged here" in legend_texts(fig) and fig.axes[0].get_ylabel() == "learning rate"
    scaled = plots.lr_schedule(runs.assign(peak_lr=runs["lr"] * (1 + runs["seed"])), history)  # peaks differ
    assert scaled.axes[0].get_ylabel() == "learning rate / peak"
    assert max(np.nanmax(xy(line)[1]) for line in scaled.axes[0].get_lines()) == pytest.approx(1.0)


def test_band_option_names_the_band() -> None:
    runs, history = make_tables(seeds=(0, 1, 2))
    assert "median over 3 seeds, band: IQR" in plots.convergence(runs, history, band="iqr").get_suptitle()
    with pytest.raises(ValueError, match="band='sd' is not one of range, iqr"):
        plots.convergence(runs, history, band="sd")


def test_sensitivity_counts_diverged_seeds_at_the_cap_and_marks_a_cell_where_every_seed_diverged() -> None:
    runs, history = make_tables(lrs=(0.1, 1.0), diverged={(0, 1, 1.0): 25, (0, 0, 1.0): 40, (20, 0, 1.0): 30})
    fig = plots.sensitivity(runs, history)
    assert_readable(fig)
    top, strip = fig.axes[0], fig.axes[1]
    crosses = [line for line in top.get_lines() if line.get_marker() == "x" and len(xy(line)[0])]
    assert len(crosses) == 1 and crosses[0].get_color() == plots.warmup_colors([0, 20])[0]
    cap = loss_curve(0, 0, 1.0)[0] + 0.05  # no chance_loss in these records: the initial held-out loss
    assert xy(crosses[0])[1][0] == pytest.approx(cap)  # every seed diverged: the median is the cap, inside the axes
    assert xy(crosses[0])[1][0] < top.get_ylim()[1]
    mixed = [line for line in top.get_lines() if line.get_color() != "#000000" and line.get_marker() != "x"][0]
    survivor = loss_curve(20, 1, 1.0)[-1]
    assert xy(mixed)[1][1] == pytest.approx((survivor + cap) / 2)  # one survivor, one diverged at the cap
    assert "capped" in top.get_ylabel() and "diverged = cap" in top.get_ylabel()
    assert [t.get_text() for t in strip.texts] == ["1/2"]  # only where some seeds trained: no overprinting
    filled = [line for line in strip.get_lines() if line.get_fillstyle() == "full"]
    assert len(filled) == 1 and xy(filled[0])[1].tolist() == [0]  # warmup 0 (the top row) at lr 1: none trained


def test_colour_follows_the_main_factor_and_names_it() -> None:
    runs, history = make_tables(warmups=(100,), seeds=(0, 1))
    shapes = pd.concat(
        [runs.assign(warmup_shape=shape, run=runs["run"] + shape) for shape in ("none", "linear", "flat")]
    )
    shapes.loc[shapes["warmup_shape"] == "none", "warmup_steps"] = 0.0
    history = pd.concat(
        [history.assign(run=history["run"].astype(str) + shape) for shape in ("none", "linear", "flat")]
    )
    assert plots.main_factor(shapes) == "warmup_shape"
    fig = plots.convergence(shapes, history)
    texts = legend_texts(fig)
    assert "none (no warmup)" in texts and not any(t.startswith("warmup = 100") for t in texts)
    assert "colour: warmup shape" in fig.get_suptitle()
    assert len(fig.axes) == 1  # the shapes are lines of one panel, not one panel each
    assert legend_color(fig, "none (no warmup)") == "#000000"
    by_warmup = plots.convergence(shapes, history, colour_by="warmup")
    assert "no warmup (warmup_shape = none)" not in legend_texts(by_warmup)  # warmup=100 has shapes other than none
    with pytest.raises(ValueError, match="colour_by='skew_x' is not a factor of this study; factors: warmup_shape"):
        plots.make_figures(Study(shapes, history, [], ["warmup_shape"]), Path("unused"), colour_by="skew_x")


def test_convergence_short_warmup_symlog_control_on_top_train_band_and_best_step() -> None:
    runs, history = make_tables(warmups=(0, 5))
    fig = plots.convergence(runs, history)
    ax = fig.axes[0]
    assert ax.get_xscale() == "symlog" and "log scale past 5" in ax.get_xlabel()
    held_out = [line for line in ax.get_lines() if line.get_linestyle() == "-" and len(xy(line)[0]) > 1]
    assert held_out[-1].get_color() == "#000000"  # no warmup drawn last, on top
    assert held_out[-1].get_zorder() > held_out[0].get_zorder()
    bands = [c for c in ax.collections if isinstance(c, PolyCollection)]
    assert len(bands) == 4  # held-out and train band for each warmup
    stars = [line for line in ax.get_lines() if line.get_marker() == "*"]
    assert len(stars) == 2
    long = plots.convergence(*make_tables(warmups=(0, 20)))
    assert long.axes[0].get_xscale() == "linear"  # a warmup of a fifth of the run reads on a linear axis


def test_early_overfitting_one_encoding_per_variable() -> None:
    runs, history = make_tables(lrs=(0.1, 1.0))
    fig = plots.early_overfitting(runs, history)
    bottom = fig.subfigs[1].axes
    for ax in bottom:
        lines = [line for line in ax.get_lines() if len(set(xy(line)[1])) > 1]
        assert not lines  # no line joins points (of different colours)
        points = [c for c in ax.collections if c.get_offsets().shape[0]]
        assert {c.get_zorder() for c in points if hasattr(c, "get_sizes") and len(c.get_sizes())} == {3}
    markers = {text for text in legend_texts(fig) if text.startswith("optimizer = sgd, lr = ")}
    assert markers == {"optimizer = sgd, lr = 0.1", "optimizer = sgd, lr = 1"}


def test_forest_has_a_row_per_comparison_and_a_zero_line() -> None:
    runs, history = make_tables(lrs=(0.1, 1.0))
    fig = plots.forest(runs, history)
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == ["warmup=20  (lr=0.1)", "warmup=20  (lr=1)"]
    assert any(xy(line)[0].tolist() == [0, 0] for line in ax.get_lines())  # the zero line
    assert "Paired effects against warmup=0" in fig.get_suptitle()
    with pytest.raises(plots.FigureSkipped, match="natural control"):
        plots.forest(runs.assign(warmup=20), history)


def test_numbers_print_as_g_and_panels_wrap_at_four_columns() -> None:
    assert plots.format_value(0.1 + 0.2) == "0.3" and plots.format_value(100.0) == "100"
    assert plots.panel_title({"lr": 0.1 + 0.2}) == "lr = 0.3"
    frame = pd.DataFrame({"optimizer": ["adam"] * 15 + ["sgd"] * 15, "lr": list(range(15)) * 2})
    panels = plots.split_panels(frame, ["optimizer", "lr"])
    n_rows, n_cols = plots.grid(panels, ["optimizer", "lr"])
    assert (n_rows, n_cols) == (8, 4) and {p.row for p in panels if p.key["optimizer"] == "sgd"} == {4, 5, 6, 7}


def test_figures_that_do_not_apply_are_skipped_with_a_reason(tmp_path: Path) -> None:
    runs, history = make_tables(skew="none")
    with pytest.raises(plots.FigureSkipped, match="learning rate does not vary"):
        plots.sensitivity(runs, history)
    rendered = plots.make_figures(Study(runs, history, [], ["warmup", "seed"]), tmp_path, formats=("png",))
    assert set(rendered.skipped) == {"sensitivity", "early_overfitting", "mechanism"}
    assert "probes=all" in rendered.skipped["mechanism"] and "skew" in rendered.skipped["early_overfitting"]
    assert set(rendered) == {"convergence", "lr_schedule", "time_to_target", "forest"}
    assert all(path.read_bytes().startswith(PNG_MAGIC) for path in rendered.values())


def test_one_optimizer_and_no_varying_factor_still_draws_one_panel() -> None:
    runs, history = make_tables(warmups=(0,), seeds=(0,))
    for name in ("convergence", "lr_schedule", "time_to_target", "early_overfitting"):
        fig = plots.FIGURES[name](runs, history)
        assert_readable(fig)
        assert "warmup = 0 steps" in legend_texts(fig)


def test_make_figures_only_and_unknown_names(tmp_path: Path) -> None:
    study = Study(*make_tables(), [], ["warmup", "seed"])
    rendered = plots.make_figures(study, tmp_path, formats=("svg", "pdf"), only=["lr_schedule"])
    assert dict(rendered) == {"lr_schedule": tmp_path / "lr_schedule.svg"}
    assert (tmp_path / "lr_schedule.pdf").read_bytes().startswith(b"%PDF")
    with pytest.raises(ValueError, match="unknown figure convergense"):
        plots.make_figures(study, tmp_path, only=["convergense"])


def test_no_run_with_a_result_is_a_skip() -> None:
    runs, history = make_tables()
    runs["status"] = "failed"
    with pytest.raises(plots.FigureSkipped, match="no run completed or diverged"):
        plots.convergence(runs, history)


# ---------------------------------------------------------------------------------------------------- pieces


def test_warmup_colors_no_warmup_black_others_ordered_by_length() -> None:
    colors = plots.warmup_colors([500, 0, 100, 100, 2000])
    assert colors[0] == "#000000"
    assert list(colors) == [0, 100, 500, 2000]
    assert len(set(colors.values())) == 4
    assert colors == plots.warmup_colors([2000, 100, 0, 500])  # order of appearance does not matter
    luminance = [np.mean(mcolors.to_rgb(colors[w])) for w in (100, 500, 2000)]
    assert luminance == sorted(luminance)  # plasma: darker for short warmups, lighter for long


def test_warmup_label_names_the_length_in_steps() -> None:
    assert plots.warmup_label(100) == "warmup = 100 steps"
    assert plots.warmup_label(100.0) == "warmup = 100 steps"
    assert plots.warmup_label(np.int64(0)) == "warmup = 0 steps"


def test_trailing_mean_averages_the_last_window_of_finite_values() -> None:
    values = np.array([[1.0, 2.0, 3.0, 4.0, np.nan], [np.nan, 2.0, np.inf, 6.0, 8.0]])
    means = plots.trailing_mean(values, window=2)
    np.testing.assert_allclose(means[0], [1.0, 1.5, 2.5, 3.5, np.nan])
    np.testing.assert_allclose(means[1], [np.nan, 2.0, np.nan, 6.0, 7.0])


def test_seeds_count_in_words() -> None:
    runs = pd.DataFrame({"warmup": [0, 0, 0, 20, 20], "seed": [0, 1, 2, 0, 1]})
    assert seeds_count(runs, ["warmup"]) == "2–3 seeds"
    assert seeds_count(runs[runs["seed"] < 2], ["warmup"]) == "2 seeds"
    assert seeds_count(runs[runs["seed"] == 0], ["warmup"]) == "1 seed"


def test_seed_summary_median_and_bands() -> None:
    values = np.array([[1.0, 4.0], [2.0, np.nan], [3.0, np.nan], [10.0, np.nan]])
    median, low, high = plots.seed_summary(values, "range")
    np.testing.assert_allclose([median, low, high], [[2.5, 4.0], [1.0, 4.0], [10.0, 4.0]])
    _, low, high = plots.seed_summary(values, "iqr")
    np.testing.assert_allclose([low[0], high[0]], [1.75, 4.75])  # numpy's linear quantiles of 1, 2, 3, 10


def test_save_writes_each_format(tmp_path: Path) -> None:
    fig = plots.lr_schedule(*make_tables())
    paths = plots.save(fig, tmp_path / "sub" / "schedule.v1", formats=("png", "svg"))
    assert paths == [tmp_path / "sub" / "schedule.v1.png", tmp_path / "sub" / "schedule.v1.svg"]
    assert paths[0].read_bytes().startswith(PNG_MAGIC)
    assert "<svg" in paths[1].read_text(encoding="utf-8")


def test_not_trained_share_counts_untrained_and_diverged_runs() -> None:
    runs = pd.DataFrame(
        {
            "lr": [0.1, 0.1, 1.0, 1.0],
            "warmup": [0, 0, 0, 0],
            "status": ["completed", "completed", "completed", "diverged"],
            "outcome": ["trained", "untrained", "untrained", "diverged"],
        }
    )
    table = plots.not_trained_rate(runs, ["warmup", "lr"])
    assert table["n_not_trained"].tolist() == [1, 2] and table["rate"].tolist() == [0.5, 1.0]
    old = runs.drop(columns="outcome")  # records from before outcomes: only divergence counts
    assert plots.not_trained_rate(old, ["warmup", "lr"])["n_not_trained"].tolist() == [0, 1]
