"""``analysis.tune``: the tuned rate is the best median among rates where every seed completed."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from analysis import tune


def runs() -> pd.DataFrame:
    rows = []
    for lr, losses, status in [
        (0.01, [0.50, 0.52, 0.51], "completed"),
        (0.1, [0.30, 0.31, 0.29], "completed"),
        (1.0, [0.10, 0.12, None], "diverged"),  # lowest loss, but a seed diverged: not usable
    ]:
        for seed, loss in enumerate(losses):
            rows.append(
                {
                    "optimizer": "sgd",
                    "lr": lr,
                    "seed": seed,
                    "status": status if loss is None else "completed",
                    "final_eval_loss": loss,
                }
            )
    rows += [
        {"optimizer": "adam", "lr": lr, "seed": 0, "status": "completed", "final_eval_loss": lr} for lr in (1e-4, 1e-3)
    ]
    return pd.DataFrame(rows)


def test_best_median_among_rates_without_divergence() -> None:
    table = tune.tuned_rates(runs()).set_index("optimizer")
    assert table.loc["sgd", "tuned_lr"] == 0.1 and table.loc["sgd", "median_final_eval_loss"] == pytest.approx(0.30)
    assert not table.loc["sgd", "at_edge"]
    assert table.loc["adam", "tuned_lr"] == 1e-4 and table.loc["adam", "at_edge"]  # the optimum may be lower


def test_write_replaces_only_the_tuned_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "sgd.yaml").write_text(
        "name: sgd\ndefault_lr: 0.1\ntuned_lr: 0.1  # not tuned yet\nweight_decay: 0.0\n"
    )
    monkeypatch.setattr(tune, "CONF_OPTIMIZER", tmp_path)
    tune.write_tuned("sgd", 0.3, Path("outputs/studies/lr-tuning"), 0.2812)
    text = (tmp_path / "sgd.yaml").read_text()
    assert (
        text.splitlines()[2] == "tuned_lr: 0.3  # python -m analysis.tune lr-tuning: median final held-out loss 0.2812"
    )
    assert text.splitlines()[3] == "weight_decay: 0.0"


def test_a_rate_where_a_seed_ended_untrained_is_not_usable() -> None:
    table = runs()
    table["outcome"] = ["trained" if s == "completed" else "diverged" for s in table["status"]]
    table.loc[(table["lr"] == 0.1) & (table["seed"] == 2), "outcome"] = "untrained"  # completed, learned nothing
    best = tune.tuned_rates(table).set_index("optimizer")
    assert best.loc["sgd", "tuned_lr"] == 0.01
