"""Metric names: an API shared by the loop, the trackers and the analysis. Defined here once.

Step semantics: ``theta_t`` are the parameters after ``t`` updates. The record line of step ``t`` holds
``train/*`` and ``opt/*`` of update ``t`` (the batch loss at ``theta_t``, the rate used, the gradient at
``theta_t``, and the step ``theta_t -> theta_{t+1}``) and, at evaluation steps, ``eval/*`` at ``theta_t``.
The final evaluation, of ``theta_T``, is the line of step ``T`` (one past the last update).
"""

from typing import Any

TRAIN_LOSS = "train/loss"  # mean cross-entropy of the step's batch (nats)
TRAIN_ACC = "train/acc"  # share of the batch classified correctly, before the update (every metrics_every)
EVAL_LOSS = "eval/loss"  # mean cross-entropy over the held-out split (nats)
EVAL_ACC = "eval/acc"  # held-out accuracy
LR = "opt/lr"  # learning rate read back from the optimizer's first param group
GRAD_NORM = "opt/grad_norm"  # global L2 norm of the gradient
UPDATE_RATIO = "opt/update_ratio"  # ||theta_{t+1} - theta_t|| / ||theta_t|| over all parameters
STEP_TIME = "sys/step_time"  # seconds for the update: batch, forward, backward, optimizer step
PROBE_TIME = "sys/probe_time"  # seconds spent in the probes before the update (only when some ran)
# Probes (ablate/run/probes/) log under probe/: probe/update_ratio/<parameter>, probe/v_hat/q10|q50|q90,
# probe/eff_step/q10|q50|q90, probe/v_hat_rel_error, probe/sharpness, probe/sharpness_limit,
# probe/precond_sharpness, probe/precond_sharpness_limit, probe/dead_relu, probe/dead_relu/<module>.

# Group-wise held-out metrics: "early" is the group the data skew favours (skew.group), "rest" every other
# group; both are logged for every skew, the i.i.d. control included, so runs can be compared pairwise.
EVAL_EARLY_LOSS = "eval/early/loss"
EVAL_EARLY_ACC = "eval/early/acc"
EVAL_REST_LOSS = "eval/rest/loss"
EVAL_REST_ACC = "eval/rest/acc"
# skew=spurious: the early group's held-out examples with the cue pointing at a wrong label
EVAL_CUE_FLIPPED_LOSS = "eval/cue_flipped/loss"
EVAL_CUE_FLIPPED_ACC = "eval/cue_flipped/acc"

ALL = (
    TRAIN_LOSS,
    TRAIN_ACC,
    EVAL_LOSS,
    EVAL_ACC,
    LR,
    GRAD_NORM,
    UPDATE_RATIO,
    STEP_TIME,
    EVAL_EARLY_LOSS,
    EVAL_EARLY_ACC,
    EVAL_REST_LOSS,
    EVAL_REST_ACC,
    EVAL_CUE_FLIPPED_LOSS,
    EVAL_CUE_FLIPPED_ACC,
)


def finite_or_none(x: float) -> float | None:
    """JSON has no NaN/inf: non-finite values are written as null (the status says why)."""
    return x if x == x and x not in (float("inf"), float("-inf")) else None


def json_safe(obj: Any) -> Any:
    """``obj`` with every non-finite float (NaN, inf) replaced by None, recursively: JSON has neither."""
    if isinstance(obj, float):
        return finite_or_none(obj)
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_safe(v) for v in obj]
    return obj
