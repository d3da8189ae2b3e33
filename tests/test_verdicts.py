"""The four-outcome verdicts of ``analysis.verdicts`` on hand-made runs tables (values computed by hand)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from analysis import verdicts as V

CHANCE = 2.3


def run_rows(cells: dict[tuple[int, float], list[tuple[str, float | None]]]) -> pd.DataFrame:
    """(warmup, lr) -> per seed (outcome, final_eval_loss); diverged runs have no final loss."""
    rows = []
    for (warmup, lr), seeds in cells.items():
        for seed, (outcome, loss) in enumerate(seeds):
            status = "diverged" if outcome == "diverged" else "completed"
            rows.append(
                {"study": "s", "warmup": warmup, "lr": lr, "seed": seed, "status": status, "outcome": outcome,
                 "final_eval_loss": loss, "chance_loss": CHANCE}
            )  # fmt: skip
    return pd.DataFrame(rows)


def test_capped_loss_counts_diverged_and_untrained_runs_at_the_chance_loss() -> None:
    runs = V.with_quality(run_rows({(0, 1.0): [("diverged", None), ("untrained", 2.9), ("trained", 0.4)]}))
    assert runs["capped_loss"].tolist() == [CHANCE, CHANCE, 0.4]
    assert runs["trained"].tolist() == [False, False, True]


def test_outcomes_of_old_records_fall_back_to_status_and_chance() -> None:
    runs = run_rows({(0, 1.0): [("trained", 0.4), ("trained", 2.5), ("diverged", None)]}).drop(columns="outcome")
    assert V.outcome_of(runs).tolist() == ["trained", "untrained", "diverged"]


def test_regime_is_the_control_failing_in_at_least_half_its_seeds() -> None:
    runs = V.with_quality(
        run_rows(
            {
                (0, 0.1): [("trained", 0.3)] * 4,  # fine without warmup: outside the regime
                (0, 1.0): [("diverged", None)] * 2 + [("trained", 0.3)] * 2,  # 2 of 4 fail: in
                (0, 3.0): [("diverged", None)] + [("trained", 0.3)] * 3,  # 1 of 4: out
            }
        )
    )
    table = V.control_fails(runs, ["lr"], "warmup=0").set_index("lr")
    assert table["in_regime"].to_dict() == {0.1: False, 1.0: True, 3.0: False}
    assert table.loc[1.0, "control_trained"] == 2 and table.loc[1.0, "control_runs"] == 4


def test_compare_rescue_is_helps_both_failing_is_no_help() -> None:
    runs = V.with_quality(
        run_rows(
            {
                (0, 1.0): [("diverged", None)] * 5,
                (100, 1.0): [("trained", 0.3), ("trained", 0.35), ("trained", 0.4), ("trained", 0.3), ("trained", 0.5)],
                (0, 3.0): [("diverged", None)] * 5,
                (100, 3.0): [("diverged", None)] * 4 + [("untrained", 2.4)],  # still at the cap: no help
                (0, 0.1): [("trained", 0.3)] * 5,
                (100, 0.1): [("trained", 0.31)] * 5,
            }
        )
    )
    table = V.compare(runs, ["warmup", "lr"], "warmup=0").set_index("lr")
    assert table.loc[1.0, "verdict"] == V.HELPS and table.loc[1.0, "in_regime"]
    # mean difference by hand: (0.3 + 0.35 + 0.4 + 0.3 + 0.5) / 5 - 2.3 = 0.37 - 2.3
    assert table.loc[1.0, "mean_diff"] == pytest.approx(0.37 - CHANCE)
    assert table.loc[3.0, "verdict"] == V.NO_HELP and table.loc[3.0, "mean_diff"] == pytest.approx(0.0)
    assert not table.loc[0.1, "in_regime"] and table.loc[0.1, "verdict"] == V.HURTS  # 0.31 > 0.3, every seed
    assert V.predicts_help(table.reset_index()) == (V.INCONCLUSIVE, 1, 1, 2)  # one right, one wrong of two


@pytest.mark.parametrize(
    ("right", "wrong", "in_regime", "word"),
    [
        (0, 0, 0, V.NOT_TESTED),
        (2, 0, 3, V.SUPPORTED),
        (1, 0, 3, V.INCONCLUSIVE),  # right must be at least half
        (0, 2, 3, V.CONTRADICTED),
        (2, 2, 4, V.INCONCLUSIVE),
        (3, 1, 4, V.SUPPORTED),
    ],
)
def test_aggregate(right: int, wrong: int, in_regime: int, word: str) -> None:
    assert V.aggregate(right, wrong, in_regime) == word


def test_cell_verdict_unclear_when_the_interval_covers_zero_but_outcomes_differ() -> None:
    row = pd.Series({"mean_diff": -0.5, "mean_diff_low": -1.2, "mean_diff_high": 0.1, "ci_available": True})
    assert V.cell_verdict(row, (3, 5), (1, 5)).verdict == V.UNCLEAR
    assert V.cell_verdict(row, (1, 5), (1, 5)).verdict == V.NO_HELP
    single = pd.Series(
        {"mean_diff": -0.5, "mean_diff_low": math.nan, "mean_diff_high": math.nan, "ci_available": False}
    )
    assert V.cell_verdict(single, (1, 1), (0, 1)).verdict == V.UNCLEAR
    assert "no interval" in V.cell_verdict(single, (1, 1), (0, 1)).text


def test_regime_sentence_counts_cells() -> None:
    table = pd.DataFrame({"lr": [1.0, 1.0, 3.0], "warmup": [10, 100, 10], "in_regime": [True, True, False]})
    assert "in 1 of 2 cells; reached." in V.regime_sentence(table, ["lr"], "warmup=0")
    none = table.assign(in_regime=False)
    assert "not reached" in V.regime_sentence(none, ["lr"], "warmup=0")
    assert np.all(table["in_regime"].to_numpy() == [True, True, False])
