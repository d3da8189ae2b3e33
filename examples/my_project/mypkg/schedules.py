"""A warmup shape of this project's own: quadratic, ``factor(t, W) = ((t + 1) / W) ** 2``."""


def quadratic(t: int, warmup_steps: int) -> float:
    """Slower than linear at first; exactly 1 at ``t = W - 1`` (ablate's convention for every shape)."""
    return ((t + 1) / warmup_steps) ** 2
