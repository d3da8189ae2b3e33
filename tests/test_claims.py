"""The verdict helpers of ``analysis.claims`` on hand-made runs tables (values computed by hand)."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from analysis.claims import Verdict, joined, reached, with_excess_gap


def runs_table() -> pd.DataFrame:
    rows = []
    gaps = {  # (warmup, skew, seed) -> skew_gap_end
        (0, "none", 0): 0.10,
        (0, "none", 1): 0.20,
        (0, "cluster", 0): 0.50,
        (0, "cluster", 1): 0.70,
        (100, "none", 0): 0.30,
        (100, "none", 1): 0.25,
        (100, "cluster", 0): 0.40,
        (100, "cluster", 1): 0.45,
    }
    for (warmup, skew, seed), gap in gaps.items():
        rows.append({"optimizer": "adam", "warmup": warmup, "skew": skew, "seed": seed, "skew_gap_end": gap})
    return pd.DataFrame(rows)


def test_excess_gap_is_the_skewed_runs_gap_minus_its_unskewed_twins() -> None:
    out = with_excess_gap(runs_table(), ["warmup", "skew", "seed"]).set_index(["warmup", "skew", "seed"])
    assert out.loc[(0, "cluster", 0), "skew_excess_gap"] == pytest.approx(0.40)
    assert out.loc[(0, "cluster", 1), "skew_excess_gap"] == pytest.approx(0.50)
    assert out.loc[(100, "cluster", 0), "skew_excess_gap"] == pytest.approx(0.10)
    assert out.loc[(100, "cluster", 1), "skew_excess_gap"] == pytest.approx(0.20)
    assert out.xs("none", level="skew")["skew_excess_gap"].isna().all()


def test_excess_gap_is_missing_without_a_twin() -> None:
    runs = runs_table()
    runs = runs[~((runs["skew"] == "none") & (runs["seed"] == 1))]
    out = with_excess_gap(runs, ["warmup", "skew", "seed"]).set_index(["warmup", "skew", "seed"])
    assert math.isnan(out.loc[(0, "cluster", 1), "skew_excess_gap"])
    assert out.loc[(0, "cluster", 0), "skew_excess_gap"] == pytest.approx(0.40)


def test_split_verdicts_name_their_arms_and_the_regime_follows_not_tested() -> None:
    assert joined({"sgd": "supported", "adam": "supported"}) == "supported"
    word = joined({"sgd": "supported", "adam": "not tested"})
    assert word == "supported for sgd; not tested for adam"
    assert reached(Verdict(word, "", "", "")) == "partly reached"
    assert reached(Verdict("not tested", "", "", "")) == "not reached"
    assert reached(Verdict("contradicted", "", "", "")) == "reached"
