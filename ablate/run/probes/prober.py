"""When and on what data the probes of ``ablate/run/probes/`` run during training (``probes`` config group).

Every probe but the per-layer update ratio runs before update ``t``, at ``theta_t``, reading the optimizer
state as update ``t`` finds it, and is logged on line ``t`` (as the held-out evaluation is). The per-layer
update ratio is of update ``t`` itself, like ``opt/update_ratio``. Probes draw their batches from their own
seeded streams, so switching one on never changes the training batches or the result of a run.
"""

from __future__ import annotations

import sys

import torch
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel

from ablate.config import Config, resolve_batch_size
from ablate.run.data.dataset import Dataset
from ablate.run.data.samplers import IIDBatchSampler
from ablate.run.optim.config import AdamConfig, RMSpropConfig
from ablate.run.probes import dead_relu, second_moment, sharpness, update_ratio
from ablate.run.runtime import derive_seed


class Prober:
    """Runs the probes that are due at a step, on fixed, seeded data."""

    def __init__(self, config: Config, data: Dataset, eval_x: torch.Tensor) -> None:
        self.cfg = config.probes
        self.seed = config.seed
        self.data = data
        self.eval_x = eval_x
        device = data.train_x.device
        # fresh batches of the training batch size: Adam's v estimates E[g_B^2] for that batch size B
        batch_size = resolve_batch_size(config, data.n_train)
        self.fresh = IIDBatchSampler(data.n_train, batch_size, derive_seed(config.seed, "probe/fresh"), device)
        self.fresh_step = 0
        generator = torch.Generator().manual_seed(derive_seed(config.seed, "probe/sharpness"))
        n = min(self.cfg.sharpness_examples, data.n_train)
        self.sharpness_idx = torch.randperm(data.n_train, generator=generator)[:n].to(device)
        o = config.optimizer
        self.skipped: dict[str, str] = {}  # probe -> why it did not run (stated in the run's result)
        self.beta1 = o.beta1 if isinstance(o, AdamConfig) else o.momentum if isinstance(o, RMSpropConfig) else 0.0

    def skip(self, probe: str, reason: str) -> None:
        """Record once that ``probe`` does not run in this run, and say why on stderr."""
        if probe not in self.skipped:
            self.skipped[probe] = reason
            print(f"warning: probe {probe} skipped: {reason}", file=sys.stderr)

    @staticmethod
    def due(every: int, step: int) -> bool:
        return every > 0 and step % every == 0

    def any_due(self, step: int) -> bool:
        """Whether a probe that runs before the update is due at ``step``."""
        c = self.cfg
        return any(self.due(every, step) for every in (c.second_moment_every, c.sharpness_every, c.dead_relu_every))

    def wants_update_ratios(self, step: int) -> bool:
        return self.due(self.cfg.update_ratio_every, step)

    def before_update(
        self,
        step: int,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        lr: float,
        loss_fn: second_moment.BatchLossFn,
    ) -> dict[str, float]:
        """The probes due at ``step``, measured at the current parameters and optimizer state.

        Runs in a forked random state, so a model with dropout draws the same training masks with probes on.
        """
        device = self.data.train_x.device
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            return self._measure(step, model, optimizer, lr, loss_fn)

    def _measure(
        self,
        step: int,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        lr: float,
        loss_fn: second_moment.BatchLossFn,
    ) -> dict[str, float]:
        out: dict[str, float] = {}
        params = update_ratio.optimizer_params(optimizer)
        why_not = second_moment.unreadable(optimizer)
        if why_not is not None and (self.cfg.second_moment_every > 0 or self.cfg.sharpness_every > 0):
            self.skip("second_moment", why_not)
            if self.cfg.sharpness_every > 0:
                self.skip("precond_sharpness", why_not)
        if self.due(self.cfg.second_moment_every, step) and why_not is None:
            out.update(second_moment.second_moment_stats(optimizer))
            if out:  # the optimizer keeps a second moment and has taken a step
                batches = []
                for _ in range(self.cfg.second_moment_batches):
                    idx = self.fresh.batch(self.fresh_step)
                    self.fresh_step += 1
                    batches.append((self.data.train_x[idx], self.data.train_y[idx]))
                v_ref = second_moment.reference_second_moment(loss_fn, params, batches)
                out.update(second_moment.second_moment_error(optimizer, v_ref))
        if self.due(self.cfg.sharpness_every, step):
            x, y = self.data.train_x[self.sharpness_idx], self.data.train_y[self.sharpness_idx]
            generator = torch.Generator().manual_seed(derive_seed(self.seed, f"probe/power/{step}"))
            # Hessian-vector products need double backward, which the fused attention kernels lack
            with sdpa_kernel(SDPBackend.MATH):
                out.update(
                    sharpness.sharpness(
                        lambda: loss_fn(x, y),
                        params,
                        lr,
                        self.cfg.sharpness_iters,
                        generator,
                        preconditioner=None if why_not else second_moment.adam_preconditioner(optimizer),
                        beta1=self.beta1,
                    )
                )
        if self.due(self.cfg.dead_relu_every, step):
            out.update(dead_relu.dead_relu_share(model, self.eval_x))
        return out
