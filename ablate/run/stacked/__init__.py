"""Stacked training: many runs of one architecture trained as one batched model in one process (docs/stacking.md)."""
