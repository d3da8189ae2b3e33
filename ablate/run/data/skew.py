"""Data skew: the order in which training examples arrive, and the spurious cue.

A dataset's examples belong to groups of related examples (a dataset defines them: for ``clusters`` the
sub-cluster index, so a group holds one cluster of every class; for ``digits`` the class; for the sequence
task a band of the vocabulary). ``skew.group`` names the favoured group. For the first ``skew.steps`` updates:

* ``none``: i.i.d. batches (the control);
* ``cluster``: ``k = round(skew.strength * batch_size)`` examples of every batch come from the favoured group
  and the other ``batch_size - k`` from the other groups, each drawn from its own stream of seeded
  permutations;
* ``spurious``: as ``cluster``, and every training and held-out example of the favoured group carries a cue,
  ``skew.cue_strength * onehot(label)`` added to its first ``n_classes`` features, which predicts the label
  only in that group;
* ``sorted``: the training set in class order (random order within a class), the extreme.

From update ``skew.steps`` on, every skew returns exactly the i.i.d. sampler's batch of that step, so a skewed
run and its ``skew=none`` twin of the same seed see identical batches after the skew phase.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from ablate.run.data.dataset import Dataset
from ablate.run.data.samplers import IIDBatchSampler
from ablate.run.runtime import derive_seed


class PermutationStream:
    """An endless stream of a pool's indices: seeded permutation after permutation, one per pass.

    ``take(start, count)`` returns stream positions ``start .. start+count-1``; a pure function of its inputs.
    """

    def __init__(self, pool: torch.Tensor, seed: int, tag: str) -> None:
        if len(pool) == 0:
            raise ValueError(f"the {tag} pool of examples is empty")
        self.pool, self.seed, self.tag = pool, seed, tag
        self._cache: dict[int, torch.Tensor] = {}

    def _pass(self, number: int) -> torch.Tensor:
        if number not in self._cache:
            if len(self._cache) > 2:
                self._cache.clear()
            generator = torch.Generator().manual_seed(derive_seed(self.seed, f"{self.tag}/pass{number}"))
            order = torch.randperm(len(self.pool), generator=generator).to(self.pool.device)
            self._cache[number] = self.pool[order]
        return self._cache[number]

    def take(self, start: int, count: int) -> torch.Tensor:
        n = len(self.pool)
        parts = []
        while count > 0:
            number, offset = divmod(start, n)
            chunk = self._pass(number)[offset : offset + count]
            parts.append(chunk)
            start, count = start + len(chunk), count - len(chunk)
        return torch.cat(parts)


class SkewedBatchSampler:
    """Batches of a skewed order for ``skew_steps`` updates, then exactly the i.i.d. sampler's batches."""

    def __init__(
        self,
        iid: IIDBatchSampler,
        mode: str,
        skew_steps: int,
        favoured: torch.Tensor,
        others: torch.Tensor,
        favoured_per_batch: int,
        class_order: torch.Tensor,
        seed: int,
    ) -> None:
        self.iid, self.mode, self.skew_steps = iid, mode, skew_steps
        self.batch_size = iid.batch_size
        self.favoured_per_batch = favoured_per_batch
        self.favoured = PermutationStream(favoured, seed, "skew/favoured")
        self.others = PermutationStream(others, seed, "skew/others") if len(others) else None
        self.class_order = class_order

    def batch(self, step: int) -> torch.Tensor:
        if step >= self.skew_steps or self.mode == "none":
            return self.iid.batch(step)
        if self.mode == "sorted":
            n = len(self.class_order)
            positions = torch.arange(step * self.batch_size, (step + 1) * self.batch_size) % n
            return self.class_order[positions.to(self.class_order.device)]
        k = self.favoured_per_batch
        parts = [self.favoured.take(step * k, k)]
        if self.others is not None and k < self.batch_size:
            rest = self.batch_size - k
            parts.append(self.others.take(step * rest, rest))
        return torch.cat(parts)


@dataclass(frozen=True)
class HeldOut:
    """The held-out split and the masks of its groups, evaluated together."""

    x: torch.Tensor
    y: torch.Tensor
    early: torch.Tensor  # bool [n]: the favoured group
    cue_flipped_x: torch.Tensor | None  # the early group's inputs with the cue on a wrong label (spurious)
    cue_flipped_y: torch.Tensor | None


def class_sorted_order(data: Dataset, seed: int) -> torch.Tensor:
    """Training indices sorted by class (by group for sequence targets), random within a class."""
    key = data.train_y if data.train_y.dim() == 1 else data.train_group
    generator = torch.Generator().manual_seed(derive_seed(seed, "skew/sorted"))
    shuffled = torch.randperm(len(key), generator=generator).to(key.device)
    return shuffled[torch.sort(key[shuffled], stable=True).indices]


def add_cue(x: torch.Tensor, labels: torch.Tensor, n_classes: int, strength: float) -> torch.Tensor:
    """``x`` with ``strength * onehot(labels)`` added to its first ``n_classes`` features."""
    cued = x.clone()
    cued[:, :n_classes] += strength * torch.nn.functional.one_hot(labels, n_classes).to(x.dtype)
    return cued


@dataclass(frozen=True)
class SkewedData:
    """What a run trains and evaluates on under its skew: ``data`` after the skew phase, ``skew_train_x`` (the
    training inputs during the skew phase when they differ, else None) and the group-wise held-out split."""

    data: Dataset
    skew_train_x: torch.Tensor | None
    held_out: HeldOut


def apply_skew(
    data: Dataset, mode: str, group: int, cue_strength: float, cue_after: str = "kept", seed: int = 0
) -> SkewedData:
    """The dataset as trained on (with the cue for ``spurious``) and its group-wise held-out split.

    ``skew=spurious`` puts the cue ``cue_strength * onehot(label)`` on every training example of the favoured group
    during the skew phase. After it (``cue_after``):

    * ``kept``: the cue stays on those training examples for the whole run, and on the favoured group's held-out
      examples (``eval/early/*`` is measured with the cue);
    * ``removed``: the training examples lose the cue; the held-out examples never carry it, so ``eval/early/*``
      asks whether the model can do without it;
    * ``shuffled``: the training examples carry the cue on a random label, drawn uniformly from the classes
      independently of the true one (seeded by the run seed), so relying on it now costs loss; held-out as for
      ``removed``.

    ``eval/cue_flipped/*`` is always the favoured group's held-out examples with the cue on a wrong label
    ``(y + 1) mod C``: reliance on the cue shows as ``eval/early/acc - eval/cue_flipped/acc``.
    """
    early = data.eval_group == group
    if mode != "spurious":
        return SkewedData(data, None, HeldOut(data.eval_x, data.eval_y, early, None, None))
    favoured = data.train_group == group
    cued_train = data.train_x.clone()
    cued_train[favoured] = add_cue(cued_train[favoured], data.train_y[favoured], data.n_classes, cue_strength)
    wrong = (data.eval_y[early] + 1) % data.n_classes
    flipped_x = add_cue(data.eval_x[early], wrong, data.n_classes, cue_strength)
    flipped_y = data.eval_y[early]
    if cue_after == "kept":
        eval_x = data.eval_x.clone()
        eval_x[early] = add_cue(eval_x[early], data.eval_y[early], data.n_classes, cue_strength)
        kept = replace(data, train_x=cued_train, eval_x=eval_x)
        return SkewedData(kept, None, HeldOut(eval_x, data.eval_y, early, flipped_x, flipped_y))
    after = data
    if cue_after == "shuffled":
        generator = torch.Generator().manual_seed(derive_seed(seed, "skew/cue_shuffled"))
        labels = torch.randint(0, data.n_classes, (int(favoured.sum()),), generator=generator).to(data.train_y.device)
        shuffled = data.train_x.clone()
        shuffled[favoured] = add_cue(shuffled[favoured], labels, data.n_classes, cue_strength)
        after = replace(data, train_x=shuffled)
    return SkewedData(after, cued_train, HeldOut(data.eval_x, data.eval_y, early, flipped_x, flipped_y))


def build_sampler(
    data: Dataset, mode: str, group: int, skew_steps: int, strength: float, batch_size: int, seed: int
) -> SkewedBatchSampler:
    iid = IIDBatchSampler(data.n_train, batch_size, seed, data.train_x.device)
    all_indices = torch.arange(data.n_train, device=data.train_x.device)
    favoured_mask = data.train_group == group
    return SkewedBatchSampler(
        iid,
        mode,
        skew_steps,
        favoured=all_indices[favoured_mask],
        others=all_indices[~favoured_mask],
        favoured_per_batch=round(strength * batch_size),
        class_order=class_sorted_order(data, seed) if mode == "sorted" else all_indices,
        seed=seed,
    )
