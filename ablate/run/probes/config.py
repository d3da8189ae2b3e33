"""Schema of the ``probes`` config group: which mechanism measurements run, and how often."""

from __future__ import annotations

from dataclasses import dataclass

from ablate.checks import check, check_at_least_one, described

INTERVALS = ("update_ratio_every", "second_moment_every", "sharpness_every", "dead_relu_every")


@dataclass
class ProbesConfig:
    name: str = described("probe preset: none (all off) or all (every probe at a moderate interval)")
    update_ratio_every: int = described("per-layer update-to-weight ratio every this many steps (0: off)")
    second_moment_every: int = described(
        "v_hat and effective-step quantiles and v_hat error every this many steps (0: off)"
    )
    second_moment_batches: int = described("fresh batches averaged into the reference second moment")
    sharpness_every: int = described("top Hessian eigenvalue (and preconditioned) every this many steps (0: off)")
    sharpness_iters: int = described("Lanczos steps (Hessian-vector products) per sharpness measurement")
    sharpness_examples: int = described("training examples in the fixed batch whose loss's Hessian is measured")
    dead_relu_every: int = described("share of dead ReLU units on the held-out split every this many steps (0: off)")

    def check(self) -> None:
        for key in INTERVALS:
            value = getattr(self, key)
            check(
                value >= 0,
                f"probes.{key}={value} is not allowed: it must be an integer >= 0; set probes.{key}=0 to turn it off",
            )
        check_at_least_one("probes", self, ("second_moment_batches", "sharpness_iters", "sharpness_examples"))


PROBES: dict[str, type] = {"none": ProbesConfig, "all": ProbesConfig}
"""Option of the ``probes`` group -> its schema."""
