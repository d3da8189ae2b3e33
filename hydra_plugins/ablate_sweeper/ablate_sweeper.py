"""ablate's sweeper: Hydra's basic grid, validated before anything runs, and resumable.

Before any job starts, every grid point is composed, turned into typed objects and validated (``python -m
ablate -m warmup=0,100,5000 steps=1000`` stops with one line), and its ``run_id`` computed. ``ablate.study.plan``
then decides each point against the records already in the study directory: done ones (``completed`` or
``diverged`` with the same ``run_id``) are skipped, failed, killed and new ones run, each in its own stable
directory (``hydra.sweep.subdir`` per job). ``hydra.sweeper.resume=false`` (or ``--fresh``) runs every point
again, setting earlier records aside. Nothing is written before the whole grid is valid; then the grid and
the plan go into ``study.json``. A job that crashes outside its run record (a launcher or SLURM failure) is
reported and does not stop the others. Several commands may work on one study at once: each run is claimed
by the process that trains it (``ablate.record.claims``), a job whose run another command holds returns
``claimed``, and the sweeper waits for those runs before the summary, so every run trains exactly once.
"""

# no `from __future__ import annotations`: Hydra's plugin scanner runs this module before it is in
# sys.modules, where dataclasses cannot resolve string annotations
import os
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.config_store import ConfigStore
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.utils import JobReturn, JobStatus
from omegaconf import OmegaConf, open_dict

from ablate.checks import ConfigError
from ablate.cli.compose import check_device
from ablate.config import Config, run_id, to_typed
from ablate.record.claims import describe_holder, is_held, read_info, wait_until_released
from ablate.record.files import DISK_FULL_ERRNOS, DiskFull
from ablate.run.user_code import uses_user_code, workload_key
from ablate.study.directory import MULTIRUN_ENV, new_stamp, write_stamp
from ablate.study.grid import (
    GridConfigError,
    confirm_large_grid,
    grid_run_ids,
    grid_size,
    large_grid_message,
    progress_message,
)
from ablate.study.plan import PlannedRun, plan


@dataclass
class ValidatingSweeperConf:
    _target_: str = "hydra_plugins.ablate_sweeper.ablate_sweeper.ValidatingSweeper"
    max_batch_size: Any = None
    params: Any = field(default_factory=dict)
    resume: bool = True
    yes: bool = False  # --yes: start a grid above ablate.study.grid.LARGE_GRID points without asking


# Hydra imports every module under hydra_plugins/ when it starts; that is when this config is registered.
ConfigStore.instance().store(group="hydra/sweeper", name="ablate", node=ValidatingSweeperConf, provider="ablate")


def quote(value: str) -> str:
    """A value as a quoted Hydra override string (commas, ``=`` and brackets stay literal)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class ValidatingSweeper(BasicSweeper):
    def __init__(
        self, max_batch_size: int | None, params: dict[str, str] | None = None, resume: bool = True, yes: bool = False
    ):
        super().__init__(max_batch_size=max_batch_size, params=params)
        self.resume = resume
        self.yes = yes

    def run_id_of(self, overrides: Sequence[str]) -> str:
        """Compose and validate one grid point; exit 2 with one line if it is not a valid run."""
        assert self.hydra_context is not None and self.config is not None
        loader = self.hydra_context.config_loader
        cfg = loader.load_sweep_config(master_config=self.config, sweep_overrides=list(overrides))
        with open_dict(cfg):
            del cfg["hydra"]
        OmegaConf.set_readonly(cfg, False)
        try:
            return run_id(to_typed(cfg))
        except ConfigError as err:
            job = " ".join(overrides) or "(no overrides)"
            print(f"error: in run [{job}]: {err}; nothing was run", file=sys.stderr)
            sys.exit(2)

    def check_devices(self, jobs: list[list[str]]) -> None:
        """Each distinct ``device`` of the grid must exist here, unless SLURM runs the jobs on other nodes."""
        assert self.config is not None
        if "slurm" in str(self.config.hydra.launcher.get("_target_", "")).lower():
            return
        devices = set()
        for job in jobs:
            chosen = [o.partition("=")[2] for o in job if o.partition("=")[0].lstrip("+~") == "device"]
            devices.add(chosen[-1] if chosen else str(self.config.get("device", "auto")))
        for device in sorted(devices):
            try:
                check_device(device)
            except ConfigError as err:
                print(f"error: {err}; nothing was run", file=sys.stderr)
                sys.exit(2)

    def sweep(self, arguments: list[str]) -> Any:
        assert self.config is not None and self.launcher is not None and self.hydra_context is not None
        params = self._parse_config() + list(arguments)
        parsed = OverridesParser.create(config_loader=self.hydra_context.config_loader).parse_overrides(params)
        factors = [o.key_or_group for o in parsed if o.is_sweep_override()]
        size = grid_size(parsed)  # counted, not enumerated: a 10^6-point grid is refused at once
        if not confirm_large_grid(size, self.yes, sys.stdin, sys.stderr):
            print(f"error: {large_grid_message(size)}", file=sys.stderr)
            sys.exit(2)
        jobs = [list(job) for batch in self.split_arguments(parsed, None) for job in batch]
        sweep_dir = Path(str(self.config.hydra.sweep.dir)).absolute()

        # nothing is written before the whole grid is valid: a rejected command leaves no trace
        workloads = UserWorkloads()
        try:
            run_ids = grid_run_ids(
                self.hydra_context.config_loader, self.config, jobs, progress=Progress(), on_config=workloads.add
            )
            workloads.check()  # the user's code, built once per distinct workload
        except GridConfigError as err:
            print(f"error: {err}; nothing was run", file=sys.stderr)
            sys.exit(2)
        except ConfigError as err:
            print(f"error: {err}; nothing was run", file=sys.stderr)
            sys.exit(2)
        self.check_devices(jobs)
        check_writable(sweep_dir)
        stamp = new_stamp(self.config, sweep_dir, self.resume)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        planned = plan(list(zip(jobs, run_ids, strict=True)), factors, sweep_dir, self.resume)
        stamp["grid"] = [
            {"run": p.subdir, "run_id": p.run_id, "overrides": p.overrides, "action": p.action, "reason": p.reason}
            for p in planned
        ]
        write_stamp(sweep_dir, stamp)
        print(describe_plan(planned), file=sys.stderr, flush=True)

        own = [
            "hydra.sweep.dir=" + quote(str(sweep_dir)),
            f"hydra.job.env_set.{MULTIRUN_ENV}={stamp['multirun_id']}",
        ]
        runs = [p for p in planned if p.action == "run"]
        to_run = [[*p.overrides, *own, f"hydra.sweep.subdir={quote(p.subdir)}"] for p in runs]
        elsewhere = [p.run_id for p in planned if p.reason.startswith("running elsewhere")]
        batch = self.max_batch_size or len(to_run) or 1
        returns: list[Sequence[JobReturn]] = []
        for start in range(0, len(to_run), batch):
            try:
                results = self.launcher.launch(to_run[start : start + batch], initial_job_idx=start)
            except OSError as err:
                if err.errno in DISK_FULL_ERRNOS:  # Hydra's own files of the next job could not be written
                    raise DiskFull(err.filename or str(sweep_dir)) from None
                raise
            for i, r in enumerate(results):
                if r.status == JobStatus.FAILED:  # the run record could not say so itself: say it here
                    first = (str(r._return_value).strip().splitlines() or ["unknown error"])[0]
                    job = " ".join(o for o in (r.overrides or []) if not o.startswith("hydra."))
                    print(f"error: job [{job}] crashed: {type(r._return_value).__name__}: {first}", file=sys.stderr)
                elif r.status == JobStatus.COMPLETED and r.return_value == "claimed":
                    elsewhere.append(runs[start + i].run_id)  # another command holds it: wait, then report it
            returns.append(results)
        wait_for_others(sweep_dir, elsewhere)
        return returns


class UserWorkloads:
    """The distinct workloads of a grid that use the user's code, each checked once before any run starts."""

    def __init__(self) -> None:
        self.configs: dict[str, Config] = {}

    def add(self, config: Config) -> None:
        if uses_user_code(config):
            self.configs.setdefault(workload_key(config), config)

    def check(self) -> None:
        if self.configs:
            from ablate.run.preflight import check_all  # torch: only when the grid names the user's code

            check_all(list(self.configs.values()))


class Progress:
    """``validating 900 runs: 300/900`` on stderr while a large grid is checked: about once a second on a
    terminal, every 10 s in a log."""

    def __init__(self) -> None:
        self.every_s = 1.0 if sys.stderr.isatty() else 10.0
        self.shown_at = -1e9

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if done == total or now - self.shown_at >= self.every_s:
            print(progress_message(done, total), file=sys.stderr, flush=True)
            self.shown_at = now


def wait_for_others(sweep_dir: Path, run_ids: list[str]) -> None:
    """Wait for the runs of this grid that another command holds (``ablate.record.claims``), so that this command's
    summary reports how they ended; Ctrl-C stops waiting (the summary then shows them ``running``)."""
    held = [r for r in run_ids if is_held(sweep_dir, r)]
    if not held:
        return
    holders = sorted({describe_holder(read_info(sweep_dir, r)) for r in held})
    print(
        f"study: waiting for {len(held)} run(s) that another command is running ({'; '.join(holders[:3])}"
        f"{' ...' if len(holders) > 3 else ''})",
        file=sys.stderr,
        flush=True,
    )
    wait_until_released(sweep_dir, held)


def check_writable(sweep_dir: Path) -> None:
    """Create the study directory and prove a file can be written there; exit 2 with one line if not."""
    try:
        sweep_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=sweep_dir) as f:
            f.write(b"ablate")
            f.flush()
            os.fsync(f.fileno())
    except OSError as err:
        print(
            f"error: cannot write the study directory {sweep_dir}: {err.strerror or err}; nothing was run; "
            "run from a writable directory or set study=<name> / hydra.sweep.dir=<a writable path>",
            file=sys.stderr,
        )
        sys.exit(2)


REASON_ORDER = ("completed before", "diverged before", "running elsewhere", "failed before", "killed before", "new")


def describe_plan(planned: list[PlannedRun]) -> str:
    """``study: 12 runs in the grid: 8 skipped (8 completed before); 4 to run (1 failed before, 3 new)``."""

    def part(action: str, verb: str) -> str:
        counts = Counter(p.reason.split(" (")[0] for p in planned if p.action == action)
        order = [r for r in REASON_ORDER if r in counts] + sorted(set(counts) - set(REASON_ORDER))
        details = ", ".join(f"{counts[r]} {r}" for r in order)
        return f"{sum(counts.values())} {verb} ({details})" if counts else f"0 {verb}"

    return f"study: {len(planned)} runs in the grid: {part('skip', 'skipped')}; {part('run', 'to run')}"
