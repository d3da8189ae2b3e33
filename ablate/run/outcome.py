"""When a run counts as diverged, and what it learned: the rules behind ``status`` and ``outcome``.

Divergence (``DivergenceRule``), checked after every update on the batch loss ``l_t``, with ``l_0`` the first
batch loss, ``f = diverge_factor`` and ``w = diverge_window``:

* ``l_t`` is NaN or infinite: diverged at once (nothing can come back from a non-finite parameter);
* ``l_t > f * l_0`` for ``w`` consecutive updates, or from some step to the last update of the run: diverged
  at the ``w``-th of them (or at the end). A spike that comes back
  below ``f * l_0`` within ``w`` updates is not divergence: gradient descent just above its stability limit
  ``2 / sharpness`` spikes to tens or hundreds of times its first loss, then settles into a flatter region and
  trains on (the "catapult" of Lewkowycz et al. 2020). ``w = 1`` is the old stop-at-the-first-spike rule.

Outcome (``classify``), from a run's status and its final held-out metrics against the chance level of its task
(``ablate.run.objective.chance_level``), with margin ``m = untrained_margin``:

* ``diverged``: the status is ``diverged`` (or the final held-out loss is not finite);
* ``trained``: the final held-out loss is at most ``(1 - m) * chance_loss``, or (classification) the final held-out
  accuracy is at least ``chance_acc + m * (1 - chance_acc)``: clearly better than chance on either measure (the
  accuracy arm keeps a model that learned but is over-confident on a few examples from counting as untrained);
* ``untrained``: otherwise: it finished, but learned no more than predicting the class frequencies (or the mean)
  does; e.g. a post-LN Transformer stuck at loss ``ln V``, or Adam at a rate so high that it ends at ``ln 10``;
* ``None`` for a ``failed`` run (an error, not a measurement).
"""

from __future__ import annotations

import math

from ablate.run.objective import Chance

TRAINED = "trained"
UNTRAINED = "untrained"
DIVERGED = "diverged"
OUTCOMES = (TRAINED, UNTRAINED, DIVERGED)


class DivergenceRule:
    """Feed it every update's batch loss; it says when (and why) the run has diverged (module docstring)."""

    def __init__(self, factor: float, window_steps: int) -> None:
        self.factor = factor
        self.window_steps = window_steps
        self.first_loss = math.nan
        self.above_since: int | None = None  # first step of the current run of losses above the threshold

    def update(self, step: int, loss: float) -> str | None:
        """The reason the run has diverged at ``step``, or None to go on."""
        if not math.isfinite(loss):
            return f"non-finite train loss ({loss})"
        if math.isnan(self.first_loss):
            self.first_loss = loss
        if not loss > self.factor * self.first_loss:
            self.above_since = None
            return None
        if self.above_since is None:
            self.above_since = step
        if step - self.above_since + 1 >= self.window_steps:
            return (
                f"train loss above diverge_factor {self.factor:g} x first loss {self.first_loss:.4g} for "
                f"{step - self.above_since + 1} updates (steps {self.above_since}..{step}; now {loss:.4g})"
            )
        return None

    def at_end(self, last_step: int) -> str | None:
        """After the last update: a run that ends inside an excursion above the threshold has diverged too."""
        if self.above_since is None:
            return None
        return (
            f"train loss above diverge_factor {self.factor:g} x first loss {self.first_loss:.4g} from step "
            f"{self.above_since} to the last update ({last_step})"
        )


def classify(
    status: str, final_loss: float | None, final_acc: float | None, chance: Chance, margin: float
) -> str | None:
    """The outcome of a run (module docstring): trained, untrained, diverged, or None for a failed run."""
    if status == "failed":
        return None
    if status == "diverged" or final_loss is None or not math.isfinite(final_loss):
        return DIVERGED
    if final_loss <= (1.0 - margin) * chance.loss:
        return TRAINED
    if chance.acc is not None and final_acc is not None and final_acc >= chance.acc + margin * (1.0 - chance.acc):
        return TRAINED
    return UNTRAINED
