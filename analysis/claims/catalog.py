"""The claims ``docs/findings.md`` tests: each one's title, the named studies it reads, its figures and its
verdict rule (one module per claim), in the order the document lists them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from analysis.claims.claim1_shapes import shapes
from analysis.claims.claim2_optimizers import optimizers
from analysis.claims.claim3_skew import skew
from analysis.claims.claim4a_lr_range import lr_range
from analysis.claims.claim4b_layernorm import layernorm
from analysis.claims.claim4c_rule import rule
from analysis.claims.claim4d_budget import budget
from analysis.claims.common import Verdict
from analysis.load import Study

REPO = Path(__file__).resolve().parents[2]
SWEEPS = REPO / "sweeps"  # the named studies, one file each
STUDIES = REPO / "outputs" / "studies"  # where they run


@dataclass
class Claim:
    key: str
    title: str
    studies: list[str]
    figures: list[str]
    judge: Callable[[list[Study]], Verdict]
    regime_figures: bool = False  # the lr x warmup phase diagram and sensitivity curves (analysis.regime_plots)
    previous: str = ""  # the verdict of the 2026-11-27 findings and why its study could not be trusted


CLAIMS = [
    Claim(
        "1",
        "Warmup is a low learning rate for the first steps, constant or linearly increased",
        ["warmup-shapes"],
        ["convergence", "lr_schedule"],
        shapes,
        previous="no clear effect, from Adam on the MLP at its tuned rate and 10x, where no warmup never failed",
    ),
    Claim(
        "2",
        "Warmup exists for adaptive optimizers; with plain SGD it makes little sense",
        ["warmup-optimizers", "warmup-sgd"],
        ["convergence", "mechanism"],
        optimizers,
        previous="contradicted, from the MLP at tuned and 10x rates, where the adaptive optimizers never failed "
        "without warmup (and runs at chance counted as completed)",
    ),
    Claim(
        "3",
        "Warmup reduces early over-fitting to a skewed start; the ramp should be about one epoch",
        ["warmup-skew"],
        ["early_overfitting"],
        skew,
        previous="contradicted, from a cue too weak to be relied on (strength 3) that stayed in the data all run, "
        "with one skew length",
    ),
    Claim(
        "4a",
        "Warmup lets training tolerate larger learning rates",
        ["warmup-lr-range"],
        [],
        lr_range,
        regime_figures=True,
        previous="depends on, from a ~3.2x grid and 'every seed completed' (runs at chance counted as successes)",
    ),
    Claim(
        "4b",
        "Post-layer-norm Transformers need warmup with Adam; pre-layer-norm ones do not",
        ["warmup-layernorm"],
        ["convergence"],
        layernorm,
        previous="contradicted, from Adam at 1e-3 and 3e-3, where post-LN trains without warmup",
    ),
    Claim(
        "4c",
        "The untuned rule W = 2/(1-beta2) against RAdam against a tuned warmup",
        ["warmup-rule"],
        ["convergence"],
        rule,
        previous="no clear effect, from the MLP at 10x its tuned rate, where Adam never failed without warmup",
    ),
    Claim(
        "4d",
        "Warmup's benefit is not just a smaller learning-rate budget",
        ["warmup-budget"],
        ["convergence"],
        budget,
        previous="no clear effect, from the MLP, where warmup did not help in the first place",
    ),
]
