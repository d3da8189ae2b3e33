"""What a run minimises and how well chance does: the loss, accuracy and chance level of each task kind.

Two task kinds, named by the dataset (``Dataset.task``):

* ``classification``: targets are class indices, one per example ``[n]`` or one per token ``[n, L]``; the model
  outputs logits ``[n, C]`` or ``[n, L, C]``. Loss: mean cross-entropy in nats over every scored prediction;
  accuracy: share of scored predictions whose largest logit is the target. A target ``IGNORE = -100`` is not
  scored (the prompt part of a sequence in ``data.format=lm``).
* ``regression``: targets are real numbers ``[n]``; the model outputs ``[n, 1]``. Loss: mean squared error
  ``mean_i (f(x_i) - y_i)^2`` (no factor 1/2; the sharpness probe and ``lr_sharpness_multiple`` use this same
  loss, so ``2 / sharpness`` is the stability limit of gradient descent on it). No accuracy.

Chance level (``chance_level``): the held-out loss of the best predictor that ignores the input, fitted on the
training targets.

* classification: predict the training class frequencies, Laplace-smoothed so a class never seen in training
  costs a finite loss: ``p_k = (n_k + 1) / (N + C)`` over all ``N`` training targets (tokens included);
  ``chance_loss = -mean_j log p_{y_j}`` over the held-out targets ``y_j``; ``chance_acc`` = share of held-out
  targets equal to the most frequent training class. Balanced classes give ``chance_loss ~ ln C``.
* regression: predict the training mean ``m``; ``chance_loss = mean_j (y_j - m)^2`` (about 1 for standardised
  targets); no ``chance_acc``.

A user's loss (``loss=<module:function>``, ``Objective.user_loss``) is a per-example function
``fn(output, y) -> [n]``; the batch loss is its mean, the metrics stay the task kind's, and the chance loss is
the user's loss of the same input-blind predictor (the smoothed class log-frequencies as logits, or the training
mean).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

IGNORE = -100  # a target that is not scored (F.cross_entropy's default ignore_index)
CLASSIFICATION = "classification"
REGRESSION = "regression"
TASKS = (CLASSIFICATION, REGRESSION)


def loss(task: str, output: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The training loss of a batch: mean cross-entropy (nats) or mean squared error."""
    if task == REGRESSION:
        return (output.squeeze(-1) - y).square().mean()
    return F.cross_entropy(output.flatten(0, -2), y.flatten())


def per_example_loss(task: str, output: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Loss of each example ``[n]`` (a sequence's loss is the mean over its tokens)."""
    n = len(y)
    if task == REGRESSION:
        return (output.squeeze(-1) - y).square()
    per_target = F.cross_entropy(output.flatten(0, -2), y.flatten(), reduction="none").view(n, -1)
    scored = (y != IGNORE).view(n, -1)
    return (per_target * scored).sum(dim=1) / scored.sum(dim=1).clamp_min(1)


def per_example_correct(task: str, output: torch.Tensor, y: torch.Tensor) -> torch.Tensor | None:
    """Share of each example's predictions that are right ``[n]``; None for regression."""
    if task == REGRESSION:
        return None
    n = len(y)
    scored = (y != IGNORE).view(n, -1)
    hits = ((output.argmax(dim=-1) == y).view(n, -1) & scored).float()
    return hits.sum(dim=1) / scored.sum(dim=1).clamp_min(1)


def accuracy(task: str, output: torch.Tensor, y: torch.Tensor) -> torch.Tensor | None:
    """Share of predictions (examples, or tokens) whose largest logit is the target; None for regression."""
    if task == REGRESSION:
        return None
    scored = y != IGNORE
    return ((output.argmax(dim=-1) == y) & scored).sum() / scored.sum().clamp_min(1)


@dataclass(frozen=True)
class Chance:
    """The held-out loss (and accuracy) of the best input-blind predictor (module docstring)."""

    loss: float
    acc: float | None


def class_frequencies(train_y: torch.Tensor, n_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Training class counts and their Laplace-smoothed frequencies ``p_k = (n_k + 1) / (N + C)``."""
    train = train_y.flatten().cpu()
    counts = torch.bincount(train[train != IGNORE], minlength=n_classes).double()
    return counts, (counts + 1.0) / (counts.sum() + n_classes)


def chance_level(task: str, train_y: torch.Tensor, eval_y: torch.Tensor, n_classes: int) -> Chance:
    """Chance loss and accuracy of a task, from its training and held-out targets (formulas above)."""
    if task == REGRESSION:
        mean = train_y.double().mean()
        return Chance(float((eval_y.double() - mean).square().mean()), None)
    counts, p = class_frequencies(train_y, n_classes)
    held_out = eval_y.flatten().cpu()
    held_out = held_out[held_out != IGNORE]
    chance_loss = float(-torch.log(p[held_out]).mean())
    chance_acc = float((held_out == int(torch.argmax(counts))).double().mean())
    assert math.isfinite(chance_loss)
    return Chance(chance_loss, chance_acc)


PerExampleLoss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Objective:
    """A run's loss and metrics: its task kind's, or a user's per-example loss (module docstring)."""

    task: str
    user_loss: PerExampleLoss | None = None

    def loss(self, output: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.user_loss is None:
            return loss(self.task, output, y)
        return self.user_loss(output, y).mean()

    def per_example_loss(self, output: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.user_loss is None:
            return per_example_loss(self.task, output, y)
        return self.user_loss(output, y)

    def per_example_correct(self, output: torch.Tensor, y: torch.Tensor) -> torch.Tensor | None:
        return per_example_correct(self.task, output, y)

    def accuracy(self, output: torch.Tensor, y: torch.Tensor) -> torch.Tensor | None:
        return accuracy(self.task, output, y)

    def chance(self, train_y: torch.Tensor, eval_y: torch.Tensor, n_classes: int) -> Chance:
        built_in = chance_level(self.task, train_y, eval_y, n_classes)
        if self.user_loss is None:
            return built_in
        if self.task == REGRESSION:
            blind = train_y.float().mean().expand(len(eval_y), 1).to(eval_y.device)
        else:
            _, p = class_frequencies(train_y, n_classes)
            blind = p.log().float().to(eval_y.device).expand(*eval_y.shape, n_classes)
        with torch.no_grad():
            return Chance(float(self.user_loss(blind, eval_y).double().mean()), built_in.acc)
