"""Batch order: which training examples each step sees.

A sampler is a deterministic function of ``(seed, step)``: ``sampler.batch(step)`` returns the indices of
step ``step``'s batch. It owns its own generator, so the order depends on the run seed only, never on the
model, optimizer or warmup -- runs that differ in those factors see identical batches and can be paired.
"""

from __future__ import annotations

import torch

from ablate.run.runtime import derive_seed


class IIDBatchSampler:
    """Epochs of a fresh uniform permutation; each epoch yields ``floor(n / batch_size)`` batches.

    Step ``t`` is batch ``t mod B`` of epoch ``t // B`` (``B`` batches per epoch); the last
    ``n mod batch_size`` examples of each permutation wait for the next epoch's shuffle.
    """

    def __init__(self, n_examples: int, batch_size: int, seed: int, device: torch.device | str = "cpu") -> None:
        if not 1 <= batch_size <= n_examples:
            raise ValueError(f"batch_size={batch_size} must be in 1 .. n_examples={n_examples}")
        self.n_examples = n_examples
        self.batch_size = batch_size
        self.batches_per_epoch = n_examples // batch_size
        self.seed = seed
        self.device = torch.device(device)
        self._epoch = -1
        self._perm = torch.empty(0, dtype=torch.long)

    def permutation(self, epoch: int) -> torch.Tensor:
        generator = torch.Generator().manual_seed(derive_seed(self.seed, f"order/epoch{epoch}"))
        return torch.randperm(self.n_examples, generator=generator).to(self.device)

    def batch(self, step: int) -> torch.Tensor:
        epoch, position = divmod(step, self.batches_per_epoch)
        if epoch != self._epoch:  # cache the current epoch's permutation; steps usually arrive in order
            self._perm, self._epoch = self.permutation(epoch), epoch
        start = position * self.batch_size
        return self._perm[start : start + self.batch_size]
