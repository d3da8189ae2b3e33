"""``python -m analysis``'s report on hand-made run records: only the sections that apply, and outcomes told apart.

Each test writes a few run records (``config.yaml``, ``metrics.jsonl``, ``result.json``) as ``ablate`` does and
renders the report in-process with few figures, so the file runs in seconds.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from analysis.__main__ import main

CHANCE = {"chance_loss": 2.3026, "chance_acc": 0.1}


def config(warmup: int, seed: int, *, lr: float = 0.01, skew: str = "none", data: str = "clusters") -> dict:
    return {
        "model": {"name": "mlp"},
        "data": {"name": data},
        "optimizer": {"name": "adam"},
        "schedule": {"name": "constant"},
        "skew": {"name": skew, "steps": 20},
        "warmup": warmup,
        "warmup_shape": "linear",
        "lr": lr,
        "steps": 40,
        "batch_size": 64,
        "seed": seed,
    }


def lines(final: float, *, accuracy: bool = True, diverge_at: int | None = None) -> list[str]:
    """Losses falling linearly from 2.3 to ``final`` over 40 steps, evaluated every 10."""
    rows = []
    for step in range(41 if diverge_at is None else diverge_at + 1):
        loss = 2.3 + (final - 2.3) * step / 40
        row: dict[str, Any] = {"step": step, "train/loss": loss if step != diverge_at else None, "opt/lr": 0.01}
        if step % 10 == 0 and step != diverge_at:
            row["eval/loss"] = loss
            if accuracy:
                row["eval/acc"] = 1 - loss / 2.3
        rows.append(json.dumps(row))
    return rows


def record(
    study: Path,
    name: str,
    cfg: dict,
    *,
    outcome: str | None = "trained",
    final: float = 0.5,
    status: str | None = None,
    accuracy: bool = True,
    extra: dict | None = None,
    with_outcome: bool = True,
) -> None:
    """One run record. ``outcome`` sets the status (diverged / failed) and the recorded outcome."""
    status = status or {"diverged": "diverged", None: "failed"}.get(outcome, "completed")
    run_dir = study / name
    run_dir.mkdir(parents=True)
    (run_dir / "config.yaml").write_text(yaml.safe_dump(cfg))
    diverged = status == "diverged"
    (run_dir / "metrics.jsonl").write_text(
        "\n".join(lines(final, accuracy=accuracy, diverge_at=15 if diverged else None))
    )
    summary: dict[str, Any] = {
        "final_eval_loss": None if status != "completed" else final,
        "final_eval_acc": (1 - final / 2.3) if accuracy and status == "completed" else None,
        "first_train_loss": 2.3,
        "chance_loss": CHANCE["chance_loss"] if accuracy else 1.0,
        "chance_acc": CHANCE["chance_acc"] if accuracy else None,
        "steps_completed": 40 if status == "completed" else 15,
        **(extra or {}),
    }
    if with_outcome:
        summary["outcome"] = outcome
    else:
        summary.pop("chance_loss")
        summary.pop("chance_acc")
    result = {
        "run_id": f"{abs(hash((str(study), name))):016x}"[:16],
        "label": name,
        "overrides": [],
        "status": status,
        "summary": summary if status != "failed" else None,
        "provenance": {"git_commit": "abc", "host": "h", "device": "cpu"},
        "started_at": "2026-11-26T10:00:00+00:00",
        "ended_at": "2026-11-26T10:00:05+00:00",
        "wall_time_s": 5.0,
    }
    if with_outcome:
        result["outcome"] = outcome
    if status == "failed":
        result["error"] = "RuntimeError: boom"
    (run_dir / "result.json").write_text(json.dumps(result))


def stamp(study: Path, *factors: str) -> None:
    study.mkdir(parents=True, exist_ok=True)
    (study / "study.json").write_text(json.dumps({"multirun_id": "m1", "factors": list(factors)}))


def report(study: Path, *args: str, figures: str = "lr_schedule") -> str:
    """Render the report (few figures, PNG only, no W&B) and return report.md."""
    assert main([str(study), "--wandb", "off", "--formats", "png", "--figures", figures, *args]) == 0
    return (study / "report" / "report.md").read_text()


def section(md: str, heading: str) -> str:
    """The text under ``## heading`` up to the next ``## ``."""
    start = md.index(f"## {heading}")
    end = md.find("\n## ", start + 3)
    return md[start : end if end >= 0 else len(md)]


def warmup_study(tmp_path: Path, skew: str = "none", **record_args: Any) -> Path:
    study = tmp_path / f"study-{skew}"
    stamp(study, "warmup", "seed")
    gaps = {"skew_gap_end": 0.3, "skew_gap_peak": 0.4, "rest_recovery_step": 30, "cue_reliance_end": 0.2}
    for warmup in (0, 20):
        for seed in (0, 1):
            extra = {**gaps, "skew_gap_end": 0.3 - warmup / 100 + seed / 100}
            if skew != "spurious":
                extra.pop("cue_reliance_end")
            cfg = config(warmup, seed, skew=skew)
            record(study, f"warmup={warmup},seed={seed}", cfg, final=0.5 + seed / 10, extra=extra, **record_args)
    return study


# ---------------------------------------------------------------------------------------------------- only what applies


def test_unskewed_study_has_no_skew_or_cue_finding(tmp_path: Path) -> None:
    md = report(warmup_study(tmp_path))  # every run records a gap (the early window exists without a skew)
    findings = section(md, "Findings")
    assert "Early over-fitting" not in findings and "Cue reliance" not in findings
    assert "skew_gap" not in findings and "over-fitting gap" not in findings
    assert "### Divergence" not in md  # nothing diverged: the runs table says so, no finding line


@pytest.mark.parametrize(("skew", "cue"), [("cluster", False), ("spurious", True)])
def test_skewed_study_has_the_skew_finding_and_a_cue_finding_only_with_a_cue(
    tmp_path: Path, skew: str, cue: bool
) -> None:
    findings = section(report(warmup_study(tmp_path, skew)), "Findings")
    assert "### Early over-fitting" in findings and "early-group over-fitting gap" in findings
    assert ("### Cue reliance" in findings) is cue


def test_regression_study_has_no_accuracy(tmp_path: Path) -> None:
    study = tmp_path / "teacher"
    stamp(study, "warmup", "seed")
    for warmup in (0, 20):
        for seed in (0, 1):
            cfg = config(warmup, seed, data="teacher")
            record(study, f"warmup={warmup},seed={seed}", cfg, final=0.2 + seed / 10, accuracy=False)
    md = report(study)
    assert "accuracy" not in md.lower() and "acc" not in md.split("## Tables")[1]
    assert "final held-out loss (MSE)" in md and "nats" not in md
    assert "chance level here: held-out loss 1.00 MSE)" in md
    # the metric list of a bad --metric names no accuracy either
    assert main([str(study), "--wandb", "off", "--metric", "final_eval_acc"]) == 2


# ---------------------------------------------------------------------------------------------------- outcomes


def test_outcome_counts_per_cell(tmp_path: Path) -> None:
    study = tmp_path / "mixed"
    stamp(study, "warmup", "seed")
    zero = ["trained", "untrained", "diverged", None]  # None: a failed run
    for seed, outcome in enumerate(zero):
        record(study, f"warmup=0,seed={seed}", config(0, seed), outcome=outcome, final=2.4 if outcome else 0.5)
    for seed in range(4):
        record(study, f"warmup=20,seed={seed}", config(20, seed), final=0.5 + seed / 100)
    md = report(study)
    counts = pd.read_csv(study / "report" / "tables" / "outcomes_by_cell.csv")
    assert counts.to_dict("records") == [
        {"warmup": 0, "runs": 4, "trained": 1, "untrained": 1, "diverged": 1, "failed": 1},
        {"warmup": 20, "runs": 4, "trained": 4, "untrained": 0, "diverged": 0, "failed": 0},
    ]
    assert "| 0 | 4 | 1 | 1 | 1 | 1 |" in md and "| 20 | 4 | 4 | 0 | 0 | 0 |" in md
    assert "| completed | 6 | 5 trained, 1 untrained |" in md
    assert "| diverged | 1 | 1 diverged |" in md and "| failed | 1 | 1 no outcome (an error) |" in md
    assert "`warmup=0` 1/4 trained (1 untrained, 1 diverged, 1 failed) vs `warmup=20` 4/4 trained." in md
    assert "### Divergence" in md and "warmup=0: 1 of 3 runs diverged" in md
    # the loss comparison counts the arms' runs with a result (the failed run is not one)
    assert "-> lower (better); untrained: 0 of 4 vs 1 of 3; diverged: 0 of 4 vs 1 of 3, no final value, left out." in md


def test_untrained_completed_runs_are_reported_as_untrained(tmp_path: Path) -> None:
    study = tmp_path / "untrained"
    stamp(study, "warmup", "lr", "seed")
    for lr in (0.001, 0.01):
        for warmup in (0, 20):
            for seed in (0, 1):
                untrained = lr == 0.01 and warmup == 0
                outcome = "untrained" if untrained else "trained"
                cfg = config(warmup, seed, lr=lr)
                final = 2.3 + seed / 100 if untrained else 0.5 + seed / 10 + warmup / 1000
                record(study, f"lr={lr},warmup={warmup},seed={seed}", cfg, outcome=outcome, final=final)
    md = report(study)
    assert "| completed | 8 | 6 trained, 2 untrained |" in md
    outcomes = section(md, "Findings").split("### Final held-out loss")[0]
    assert "- `lr=0.01`: `warmup=0` 0/2 trained (2 untrained) vs `warmup=20` 2/2 trained." in outcomes
    assert "The other comparison: every run trained in both arms." in outcomes
    effects = [line for line in md.splitlines() if line.startswith("- `warmup=20` vs `warmup=0`")]
    assert len(effects) == 2
    untrained_arm = next(line for line in effects if "(lr=0.01)" in line)
    assert "-> lower (better); untrained: 0 of 2 vs 2 of 2." in untrained_arm
    assert "untrained" not in next(line for line in effects if "(lr=0.001)" in line)
    table = section(md, "Tables")
    assert "| warmup | lr | n | untrained |" in table and "| 0 | 0.01 | 2 | 2 |" in table


def test_records_without_outcome_are_unknown_not_trained(tmp_path: Path) -> None:
    study = tmp_path / "old"
    stamp(study, "warmup", "seed")
    for warmup in (0, 20):
        for seed in (0, 1):
            record(study, f"warmup={warmup},seed={seed}", config(warmup, seed), with_outcome=False)
    md = report(study)
    assert "| completed | 4 | 4 unknown (no outcome recorded) |" in md
    assert "4 runs record no outcome and no chance level" in md and "trained" not in section(md, "Runs").split("|")[-1]


# ---------------------------------------------------------------------------------------------------- regime


def lr_grid_study(tmp_path: Path, rates: tuple[float, ...]) -> Path:
    """lr x warmup x 2 seeds: without warmup the top rate diverges; with warmup every rate trains."""
    study = tmp_path / f"grid{len(rates)}"
    stamp(study, "lr", "warmup", "seed")
    for lr in rates:
        for warmup in (0, 20):
            for seed in (0, 1):
                outcome = "diverged" if (warmup == 0 and lr == rates[-1]) else "trained"
                cfg = config(warmup, seed, lr=lr)
                record(study, f"lr={lr},warmup={warmup},seed={seed}", cfg, outcome=outcome, final=0.5 + seed / 10)
    return study


def test_regime_section_for_an_lr_by_warmup_grid(tmp_path: Path) -> None:
    study = lr_grid_study(tmp_path, (0.01, 0.02, 0.04))
    md = report(study, figures="phase_diagram")
    regime = section(md, "Learning-rate regime")
    assert "(lr x warmup)" in regime
    assert "- lr*(W=20)/lr*(0) = 2 [2, 2] over 2 seeds (warmup's lr* censored: at least)." in regime
    assert "| 0 | 2 | 0.02 | - |" in regime and "| 20 | 2 | ≥0.04 | 2 [2, 2] |" in regime
    assert "lr grid is coarse: neighbouring rates differ up to x2" in regime
    assert "](figures/phase_diagram.png)" in regime
    # every control run at the top rate diverged: no loss pair, and the loss findings say so rather than drop it
    no_pair = "- `warmup=20` vs `warmup=0` (lr=0.04): final held-out loss (nats): no pair of seeds with a value; "
    assert no_pair + "diverged: 0 of 2 vs 2 of 2, no final value, left out." in md
    assert (study / "report" / "figures" / "phase_diagram.png").stat().st_size > 5000
    assert (study / "report" / "tables" / "regime.csv").exists()


def test_no_regime_section_without_three_rates_or_warmup(tmp_path: Path) -> None:
    two = report(lr_grid_study(tmp_path, (0.01, 0.02)), figures="phase_diagram")
    assert "## Learning-rate regime" not in two
    assert "phase_diagram: 2 values of lr: the stable-lr analysis needs at least 3 rates" in two
    plain = report(warmup_study(tmp_path), figures="phase_diagram")
    assert "## Learning-rate regime" not in plain and "lr*(" not in plain


def test_fine_grid_has_no_spacing_warning(tmp_path: Path) -> None:
    rates = tuple(float(f"{0.01 * math.sqrt(2) ** k:.6g}") for k in range(4))
    regime = section(report(lr_grid_study(tmp_path, rates), figures="phase_diagram"), "Learning-rate regime")
    assert "coarse" not in regime and "lr*(W=20)/lr*(0) = 1.41" in regime
