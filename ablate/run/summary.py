"""A run's summary: final and best held-out metrics and the early over-fitting measures.

Eval steps are ``0, e, 2e, ...`` and ``T`` (``e = eval_every``). With ``K = skew.steps`` (the skew phase,
or the early window of an i.i.d. run), ``t_end`` is the first eval step ``>= K``, and
``gap(t) = eval/rest/loss(t) - eval/early/loss(t)`` is how much better the model does on the favoured group
than on the rest. Measures (``None`` when a run ended before they exist):

* ``skew_gap_end = gap(t_end)``; ``skew_gap_peak = max_{t <= t_end} gap(t)`` and its step;
* ``rest_recovery_step``: the first eval step ``s >= t_end`` from which ``eval/rest/loss`` stays within
  ``skew.recovery_tolerance`` (relative) of its final value: ``|rest(s') - rest(T)| <= tol * rest(T)`` for
  every eval step ``s' >= s`` (completed runs only; against the run's own final value, not a paired run);
* ``early_train_eval_gap``: mean over eval steps ``0 < t <= t_end`` of ``eval/loss(t)`` minus the mean
  ``train/loss`` of the ``e`` updates before ``t`` -- the train/held-out gap of the early phase;
* ``cue_reliance_end`` (``skew=spurious``): ``eval/early/acc(t_end) - eval/cue_flipped/acc(t_end)``, and
  ``cue_reliance_final``, the same at the last evaluation (has the reliance been unlearned?).

And what the outcome rules need (``ablate.run.outcome``): ``chance_loss``/``chance_acc`` (``ablate.run.objective``),
``peak_train_loss`` (the largest finite batch loss) and its step, ``peak_loss_ratio = peak_train_loss /
first_train_loss``; ``peak_lr`` (the schedule's peak rate) and ``sharpness_at_init`` (``lr_sharpness_multiple``).
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any

from ablate.run import metrics as M
from ablate.run.metrics import finite_or_none
from ablate.run.objective import Chance


class Summary:
    """Collects what the summary needs while the loop runs; ``result`` computes it."""

    def __init__(self, window_steps: int, skew_steps: int, recovery_tolerance: float) -> None:
        self.skew_steps = skew_steps
        self.recovery_tolerance = recovery_tolerance
        self.train_losses: deque[float] = deque(maxlen=window_steps)
        self.first_train_loss = math.nan
        self.evals: list[tuple[int, dict[str, float], float | None]] = []  # step, metrics, mean train loss
        self.peak_train_loss = -math.inf
        self.peak_train_loss_step: int | None = None
        self.chance = Chance(math.nan, None)
        self.peak_lr: float | None = None
        self.sharpness_at_init: float | None = None
        self.probes_skipped: dict[str, str] = {}  # probe -> why it did not run

    def set_run_facts(self, chance: Chance, peak_lr: float, sharpness_at_init: float | None) -> None:
        self.chance, self.peak_lr, self.sharpness_at_init = chance, peak_lr, sharpness_at_init

    def add_train(self, step: int, loss: float) -> None:
        if not self.train_losses and math.isnan(self.first_train_loss):
            self.first_train_loss = loss
        self.train_losses.append(loss)
        if math.isfinite(loss) and loss > self.peak_train_loss:
            self.peak_train_loss, self.peak_train_loss_step = loss, step

    def window_mean(self) -> float | None:
        """Mean of the finite train losses of the last ``window_steps`` updates."""
        window = [x for x in self.train_losses if math.isfinite(x)]
        return sum(window) / len(window) if window else None

    def add_eval(self, step: int, held_out: dict[str, float]) -> None:
        self.evals.append((step, held_out, self.window_mean()))

    def result(self, final: dict[str, float] | None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "final_eval_loss": final[M.EVAL_LOSS] if final else None,
            "final_eval_acc": final.get(M.EVAL_ACC) if final else None,
            "best_eval_loss": None,
            "best_eval_loss_step": None,
            "best_eval_acc": None,
            "best_eval_acc_step": None,
        }
        for key, name, sign in ((M.EVAL_LOSS, "eval_loss", 1.0), (M.EVAL_ACC, "eval_acc", -1.0)):
            finite = [(sign * m[key], step, m[key]) for step, m, _ in self.evals if math.isfinite(m.get(key, math.nan))]
            if finite:
                _, out[f"best_{name}_step"], out[f"best_{name}"] = min(finite)
        out["first_train_loss"] = finite_or_none(self.first_train_loss)
        out["final_train_loss"] = self.window_mean() if final else None
        peak = self.peak_train_loss if self.peak_train_loss_step is not None else math.nan
        out["peak_train_loss"] = finite_or_none(peak)
        out["peak_train_loss_step"] = self.peak_train_loss_step
        out["peak_loss_ratio"] = finite_or_none(peak / self.first_train_loss) if self.first_train_loss else None
        out["chance_loss"] = finite_or_none(self.chance.loss)
        out["chance_acc"] = self.chance.acc
        out["peak_lr"] = self.peak_lr
        out["sharpness_at_init"] = self.sharpness_at_init
        out.update(self.early_overfitting(completed=final is not None))
        return out

    def early_overfitting(self, completed: bool) -> dict[str, Any]:
        out: dict[str, Any] = dict.fromkeys(
            (
                "skew_end_step",
                "skew_gap_end",
                "skew_gap_peak",
                "skew_gap_peak_step",
                "rest_recovery_step",
                "early_train_eval_gap",
                "cue_reliance_end",
                "cue_reliance_final",
            )
        )
        ends = [i for i, (step, _, _) in enumerate(self.evals) if step >= self.skew_steps]
        if not ends:
            return out
        end = ends[0]
        out["skew_end_step"] = self.evals[end][0]

        def gap(m: dict[str, float]) -> float:
            return m[M.EVAL_REST_LOSS] - m[M.EVAL_EARLY_LOSS]

        gaps = [(gap(m), step) for step, m, _ in self.evals[: end + 1] if math.isfinite(gap(m))]
        end_metrics = self.evals[end][1]
        out["skew_gap_end"] = finite_or_none(gap(end_metrics))
        if gaps:
            out["skew_gap_peak"], out["skew_gap_peak_step"] = max(gaps)
        early_gaps = [m[M.EVAL_LOSS] - train for step, m, train in self.evals[1 : end + 1] if train is not None]
        if early_gaps:
            out["early_train_eval_gap"] = finite_or_none(sum(early_gaps) / len(early_gaps))
        if M.EVAL_CUE_FLIPPED_ACC in end_metrics:
            out["cue_reliance_end"] = end_metrics[M.EVAL_EARLY_ACC] - end_metrics[M.EVAL_CUE_FLIPPED_ACC]
            if completed:
                last = self.evals[-1][1]
                out["cue_reliance_final"] = last[M.EVAL_EARLY_ACC] - last[M.EVAL_CUE_FLIPPED_ACC]
        if completed:
            final_rest = self.evals[-1][1][M.EVAL_REST_LOSS]
            tolerance = self.recovery_tolerance * abs(final_rest)
            recovered = None
            for step, m, _ in reversed(self.evals[end:]):
                if not abs(m[M.EVAL_REST_LOSS] - final_rest) <= tolerance:
                    break
                recovered = step
            out["rest_recovery_step"] = recovered
        return out
