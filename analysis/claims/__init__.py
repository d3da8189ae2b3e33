"""The warmup claims, tested: ``python -m analysis.claims`` runs the named studies and writes ``docs/findings.md``.

One module per claim holds its verdict rule (``claim1_shapes`` ... ``claim4d_budget``, each a function
``list[Study] -> Verdict``), on the shared ``common`` helpers; ``catalog`` lists the claims with their studies and
figures; ``runner`` runs the studies as subprocesses and times them into ``wall_times`` (a generated file,
``docs/generated/wall_times.yaml``); ``document`` writes the findings; ``cli`` is the command.
"""

from analysis.claims.catalog import CLAIMS, Claim
from analysis.claims.claim3_skew import recovery_vs_twin, reliance_cells, skewed_runs, with_excess_gap
from analysis.claims.cli import main
from analysis.claims.common import Verdict, joined
from analysis.claims.document import reached, write_findings

__all__ = [
    "CLAIMS",
    "Claim",
    "Verdict",
    "joined",
    "main",
    "reached",
    "recovery_vs_twin",
    "reliance_cells",
    "skewed_runs",
    "with_excess_gap",
    "write_findings",
]
