"""``python -m mypkg.make_data data/spirals.npz``: write this project's dataset to disk (no download).

Three interleaved spirals in 2-D lifted to 16 features by a fixed random map plus noise; the group of an
example is the arm segment it lies on (inner, middle, outer: 3 groups), so ablate can skew the first batches
towards one segment and report that group against the rest.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np


def spirals(n: int = 3000, n_classes: int = 3, n_features: int = 16, noise: float = 0.15, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    label = rng.integers(0, n_classes, size=n)
    radius = rng.uniform(0.1, 1.0, size=n)
    angle = 3.0 * np.pi * radius + 2.0 * np.pi * label / n_classes
    plane = np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1)
    lift = rng.normal(0.0, 1.0, size=(2, n_features))
    x = np.tanh(plane @ lift) + noise * rng.normal(size=(n, n_features))
    group = np.minimum((radius - 0.1) / 0.9 * 3, 2).astype(np.int64)
    return {"x": x.astype(np.float32), "y": label.astype(np.int64), "group": group}


def main(path: str) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **spirals())
    print(f"wrote {path}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "data/spirals.npz")
