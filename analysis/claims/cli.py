"""``python -m analysis.claims``: run the named studies and write ``docs/findings.md``, one section per claim.

    python -m analysis.claims                 # run every study in sweeps/ (resuming), tune, analyse, write docs/
    python -m analysis.claims --no-run        # only analyse the studies already in outputs/studies/

Order: ``lr-tuning`` first, then ``python -m analysis.tune --write`` (the "well-tuned" rates of the other
studies, written to ``conf/generated/tuned_lr/``), then every claim's study. Each study's wall time is measured
and recorded in the generated ``docs/generated/wall_times.yaml``; no source file is edited. For each claim the
section says what was measured, shows the figures (copied to ``docs/figures/``), lists the paired comparisons
(effect, 95% interval, seeds) and gives a verdict computed from them by the rule written next to it: nothing in
the document is written by hand for a particular outcome.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from analysis.claims.catalog import REPO, STUDIES
from analysis.claims.document import write_findings
from analysis.claims.runner import run_all


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m analysis.claims", description=__doc__.split("\n")[0])
    parser.add_argument("--no-run", action="store_true", help="analyse the existing studies only")
    parser.add_argument("--docs", type=Path, default=REPO / "docs")
    parser.add_argument("--studies", type=Path, default=STUDIES, help="where the studies are")
    args = parser.parse_args(argv)
    if not args.no_run:
        run_all()
    print(f"wrote {write_findings(args.docs, args.studies)}")
    return 0
