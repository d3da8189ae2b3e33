"""Probes: measurements of the mechanisms that explain why learning-rate warmup matters.

Modules: ``config`` (the ``probes`` group's schema), ``update_ratio``, ``second_moment``, ``sharpness`` and
``dead_relu`` (the measurements), ``prober`` (which runs them at their intervals during training).

Every probe is a pure function of explicit inputs (a model, an optimizer, a loss closure, tensors). It returns
``dict[str, float]`` keyed by metric name (or, for the helpers, tensors), writes no file, draws from no global
random generator, and leaves the parameters, their gradients (``p.grad``) and the optimizer state exactly as
it found them: gradients are taken with ``torch.autograd.grad``, never ``.backward()``. Everything runs on the
tensors' own device (CPU or CUDA). ``theta`` are the parameters, ``g`` a gradient, ``t`` the optimizer's
step count; all norms are L2 over every coordinate named.

Probes (formula; metric names; cost in extra forward/backward passes per use):

- ``snapshot`` before ``optimizer.step()``, then ``layer_update_ratios``: ``||p_after - p_before|| /
  ||p_before||`` per parameter tensor; ``probe/update_ratio/<param name>``; no pass (a copy of the parameters).
- ``second_moment_stats``: quantiles over all coordinates of ``v_hat`` (below) and of the effective step
  ``eff_step = lr_t / (sqrt(v_hat) + eps)``; ``probe/v_hat/q10``, ``probe/v_hat/q50``, ``probe/v_hat/q90``,
  ``probe/eff_step/q10``, ``probe/eff_step/q50``, ``probe/eff_step/q90``; no pass (reads the state).
- ``reference_second_moment``: the true second moment ``v_ref = mean_b g_b**2`` over fresh batches ``b`` at
  the current parameters (tensors); one forward and one backward pass per batch.
- ``second_moment_error``: ``||v_hat - v_ref|| / ||v_ref||``, the direct test of "the adaptive optimizer needs
  time to estimate its statistics"; ``probe/v_hat_rel_error``; no pass.
- ``top_hessian_eigenvalue``: Lanczos on ``H`` or ``D^{-1/2} H D^{-1/2}``, the largest eigenvalue of its
  tridiagonal (a float: the top, largest algebraic, eigenvalue); one forward and one backward pass, then
  ``iters`` Hessian-vector products of about two backward passes each.
- ``sharpness``: the same for ``H`` and, given ``D``, for ``D^{-1/2} H D^{-1/2}``, with their stability
  thresholds; ``probe/sharpness``, ``probe/sharpness_limit``, ``probe/precond_sharpness``,
  ``probe/precond_sharpness_limit``; one forward and one backward pass, then ``iters`` Hessian-vector products
  (``2 * iters`` with ``D``).
- ``adam_preconditioner``: ``D = sqrt(v_hat) + eps`` per parameter (tensors); no pass.
- ``dead_relu_share``: the share of an ``nn.ReLU``'s units that are 0 for every example of ``x``;
  ``probe/dead_relu/<module name>`` and ``probe/dead_relu`` (all ReLU units); one forward pass (no grad).
"""
