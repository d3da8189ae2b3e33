"""``python -m analysis.tune <lr-tuning study> [--write]``: each optimizer's tuned learning rate.

Rule: among the learning rates where every seed trained (outcome ``trained``: none diverged, failed or ended no
better than chance; records without an outcome: every seed completed), the one with the lowest median final
held-out loss over seeds. ``--write`` puts it into ``conf/optimizer/<name>.yaml`` as ``tuned_lr``
(with the study and the value in a comment), which the named studies use as their "well-tuned" rate
(``lr: ${ablate_mul:${optimizer.tuned_lr},${lr_scale}}``). A rate at the edge of the grid is flagged: the
optimum may lie outside it.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import pandas as pd

from analysis.load import StudyError, load_study

CONF_OPTIMIZER = Path(__file__).resolve().parent.parent / "conf" / "optimizer"
METRIC = "final_eval_loss"


def tuned_rates(runs: pd.DataFrame) -> pd.DataFrame:
    """Per optimizer: the tuned rate, its median loss, the grid, and whether the choice sits at the grid's edge."""
    rows = []
    runs = runs.assign(_ok=runs["outcome"] == "trained" if "outcome" in runs else runs["status"] == "completed")
    for optimizer, runs_of in runs.groupby("optimizer"):
        per_lr = runs_of.groupby("lr").agg(
            n=("status", "size"),
            all_completed=("_ok", "all"),
            median_loss=(METRIC, "median"),
        )
        usable = per_lr[per_lr["all_completed"]]
        if usable.empty:
            continue
        best = float(usable["median_loss"].idxmin())
        grid = sorted(float(x) for x in per_lr.index)
        rows.append(
            {
                "optimizer": optimizer,
                "tuned_lr": best,
                "median_final_eval_loss": float(usable.loc[best, "median_loss"]),
                "seeds": int(usable.loc[best, "n"]),
                "grid": ", ".join(f"{x:g}" for x in grid),
                "at_edge": best in (grid[0], grid[-1]),
            }
        )
    return pd.DataFrame(rows)


def write_tuned(optimizer: str, lr: float, study: Path, loss: float) -> Path:
    """Replace the ``tuned_lr:`` line of ``conf/optimizer/<optimizer>.yaml``."""
    path = CONF_OPTIMIZER / f"{optimizer}.yaml"
    text = path.read_text()
    line = f"tuned_lr: {lr:g}  # python -m analysis.tune {study.name}: median final held-out loss {loss:.4f}\n"
    new, count = re.subn(r"^tuned_lr:.*\n", line, text, flags=re.MULTILINE)
    if count != 1:
        raise ValueError(f"{path} has no single tuned_lr line to replace")
    path.write_text(new)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m analysis.tune", description=__doc__.split("\n")[0])
    parser.add_argument("study", type=Path, help="the learning-rate study (outputs/studies/lr-tuning)")
    parser.add_argument("--write", action="store_true", help="write tuned_lr into conf/optimizer/<name>.yaml")
    args = parser.parse_args(argv)
    try:
        study = load_study(args.study)
    except StudyError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if "lr" not in study.factors or "optimizer" not in study.runs:
        print(f"error: {args.study} does not vary lr (factors: {', '.join(study.factors)})", file=sys.stderr)
        return 2
    table = tuned_rates(study.runs)
    print(table.to_string(index=False))
    for _, row in table.iterrows():
        if row["at_edge"]:
            print(f"warning: {row['optimizer']}: {row['tuned_lr']:g} is at the edge of the grid", file=sys.stderr)
        if args.write:
            print(f"wrote {write_tuned(row['optimizer'], row['tuned_lr'], args.study, row['median_final_eval_loss'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
