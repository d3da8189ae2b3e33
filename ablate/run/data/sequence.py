"""Synthetic sequence-to-sequence tasks: sort or reverse a sequence of tokens, generated from a seed.

Two formats (``data.format``):

* ``aligned``: the input is the ``L`` tokens ``x``, the target at position ``i`` is ``y_i`` (``y = sort(x)`` or
  ``reverse(x)``); for an encoder with bidirectional attention.
* ``lm``: one sequence ``x_0 .. x_{L-1} SEP y_0 .. y_{L-1}`` (``SEP = vocab_size``, so the model's vocabulary is
  ``vocab_size + 1``), read left to right as a language model does: the input is all but its last token
  (``2L`` positions), the target at position ``i`` is token ``i + 1``. Only the answer is scored: the first
  ``L`` targets (the rest of ``x`` and ``SEP``) are ``IGNORE`` (-100, the value ``F.cross_entropy`` skips),
  the last ``L`` are ``y``. This is the format a causal (decoder-only) Transformer can solve.
"""

from __future__ import annotations

import numpy as np
import torch

from ablate.run.data.dataset import Dataset


def group_bands(vocab_size: int, n_groups: int) -> list[tuple[int, int]]:
    """The token band ``[lo_g, hi_g)`` of each group ``g = 0 .. G-1`` (``V = vocab_size``, ``G = n_groups``).

    Band ``g`` is the ``g``-th of ``G`` equal slices of the vocabulary, ``[g V/G, (g+1) V/G)``, widened by half
    a slice on each side and clipped to ``[0, V)``, with outward rounding:
    ``lo_g = max(0, floor((2g - 1) V / 2G))``, ``hi_g = min(V, ceil((2g + 3) V / 2G))``.
    Neighbouring bands overlap (by a whole slice in the interior); every band is non-empty; together they cover
    the vocabulary. E.g. ``V = 16, G = 4``: ``[0, 6), [2, 10), [6, 14), [10, 16)``.
    """
    if vocab_size < 2 or n_groups < 1:
        raise ValueError(f"need vocab_size >= 2 and n_groups >= 1, got vocab_size={vocab_size}, n_groups={n_groups}")
    bands = []
    for g in range(n_groups):
        lo = ((2 * g - 1) * vocab_size) // (2 * n_groups)  # floor, also for the negative first edge
        hi = -((-(2 * g + 3) * vocab_size) // (2 * n_groups))  # ceil
        bands.append((max(0, lo), min(vocab_size, hi)))
    return bands


IGNORE = -100  # a target that is not scored (F.cross_entropy's default ignore_index)
TASKS = ("sort", "reverse")
FORMATS = ("aligned", "lm")


def make_sort_task(
    seed: int,
    n_train: int,
    n_eval: int,
    seq_len: int,
    vocab_size: int,
    n_groups: int,
    task: str = "sort",
    fmt: str = "aligned",
) -> Dataset:
    """Learn to sort: ``x`` is ``seq_len`` tokens in ``[0, vocab_size)``, ``y = sort(x)`` ascending, per position
    (``task="reverse"``: ``y = x`` reversed); in format ``fmt`` (module docstring).

    ``x`` and ``y`` are int64 ``[n, seq_len]``; ``n_classes = vocab_size`` (a prediction per position, chance
    token accuracy ``1/vocab_size`` for a guesser, higher for one that knows the output is sorted). Each
    example's group ``g`` is drawn uniformly from ``0 .. n_groups-1``, then its ``seq_len`` tokens i.i.d.
    uniformly from band ``g`` of :func:`group_bands` (so all tokens of a group-``g`` example lie in
    ``[lo_g, hi_g)``: examples of one group are related, for data skew). Train and held-out examples are
    independent draws from ``numpy.random.default_rng(seed)``, train first: the task is a function of the
    arguments only.
    With ``fmt="lm"``, ``x`` and ``y`` are ``[n, 2 seq_len]`` and ``n_classes = vocab_size + 1``.
    """
    if task not in TASKS or fmt not in FORMATS:
        raise ValueError(f"task must be one of {TASKS} and fmt one of {FORMATS}, got {task!r}, {fmt!r}")
    if min(n_train, n_eval, seq_len) < 1:
        raise ValueError(f"need n_train, n_eval, seq_len >= 1, got {n_train}, {n_eval}, {seq_len}")
    bands = np.array(group_bands(vocab_size, n_groups), dtype=np.int64)
    rng = np.random.default_rng(seed)

    def draw(n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        group = rng.integers(0, n_groups, size=n)
        lo, hi = bands[group, 0:1], bands[group, 1:2]  # [n, 1] each, broadcast over positions
        x = rng.integers(lo, hi, size=(n, seq_len))
        y = np.sort(x, axis=1) if task == "sort" else x[:, ::-1]
        if fmt == "lm":
            tokens = np.concatenate([x, np.full((n, 1), vocab_size), y], axis=1)  # x SEP y: 2L + 1 tokens
            x, y = tokens[:, :-1], tokens[:, 1:].copy()
            y[:, :seq_len] = IGNORE  # score the answer only
        return (
            torch.from_numpy(x.astype(np.int64)),
            torch.from_numpy(y.astype(np.int64)),
            torch.from_numpy(group.astype(np.int64)),
        )

    train_x, train_y, train_group = draw(n_train)
    eval_x, eval_y, eval_group = draw(n_eval)
    n_classes = vocab_size + 1 if fmt == "lm" else vocab_size
    return Dataset(task, train_x, train_y, train_group, eval_x, eval_y, eval_group, n_classes)
