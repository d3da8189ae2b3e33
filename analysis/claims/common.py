"""What every claim's verdict module shares: the ``Verdict`` it returns and the helpers its sentences use."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from analysis import verdicts as V
from analysis.load import Study


def steps_text(value: object) -> str:
    """A step count as written in the grid: ``128``, not ``128.0``."""
    number = float(value)  # type: ignore[arg-type]
    return str(int(number)) if number.is_integer() else str(value)


@dataclass
class Verdict:
    """What a claim's rule concluded, with the numbers behind it; ``docs/findings.md`` prints it as is."""

    word: str  # supported, contradicted, not tested, inconclusive; "<word> for <arm>; ..." when arms differ
    because: str  # the numbers the rule was applied to
    regime: str  # whether the control arm reached the regime where the claim can show
    rule: str  # the rule, stated once
    tables: list[tuple[str, pd.DataFrame]] = field(default_factory=list)  # (caption, cell comparisons) to list


def joined(words: dict[str, str]) -> str:
    """One word when every arm agrees, else ``supported for sgd; contradicted for adam``."""
    distinct = set(words.values())
    if len(distinct) == 1:
        return distinct.pop()
    return "; ".join(f"{word} for {arm}" for arm, word in words.items())


def counts_text(verdict: tuple[str, int, int, int], right: str, wrong: str) -> str:
    word, n_right, n_wrong, n_regime = verdict
    return f"{n_right} of {n_regime} in-regime cells {right}, {n_wrong} {wrong}"


def quality_runs(study: Study) -> pd.DataFrame:
    return V.with_quality(study.runs)
