"""Validating a study's grid: the sweeper's per-point composition against ``ablate.study.grid.grid_run_ids``.

A multirun of the default config over ``lr x warmup x seed`` (values only, one group combination) is set up
as ``python -m ablate -m ...`` does (Hydra's loader, the multirun config, ablate's sweeper and its job list).
Then, in the same process and alternating per repeat: the per-point path (``ValidatingSweeper.run_id_of`` for
every job: a full Hydra composition per point) and ``grid_run_ids`` (one composition per group combination,
then value overrides applied in place). Both must give the same ids. Prints seconds per path, ms per point
and the ratio; ``--fast-only N`` also times the fast path alone on an N-point grid, and ``--parts`` the
remaining per-point costs (``OmegaConf.to_object``, ``validate``, ``run_id``, applying the overrides).

    python bench/grid_validation.py [--sizes 100,900] [--repeats 1] [--fast-only 10000] [--parts]
"""

from __future__ import annotations

import argparse
import copy
import math
import os
import statistics
import sys
import time
import timeit
from pathlib import Path
from typing import Any

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_ERROR_REPORTING", "false")
os.environ.setdefault("WANDB_SILENT", "true")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hydra._internal.callbacks import Callbacks  # noqa: E402
from hydra._internal.config_loader_impl import ConfigLoaderImpl  # noqa: E402
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper  # noqa: E402
from hydra._internal.hydra import Hydra  # noqa: E402
from hydra._internal.utils import create_config_search_path  # noqa: E402
from hydra.core.global_hydra import GlobalHydra  # noqa: E402
from hydra.core.override_parser.overrides_parser import OverridesParser  # noqa: E402
from hydra.core.plugins import Plugins  # noqa: E402
from hydra.types import HydraContext, RunMode  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402

from ablate.config import (  # noqa: E402
    CONF_DIR,  # noqa: E402
    register_configs,
    run_id,
    validate,
)
from ablate.study.grid import Grid, grid_run_ids, grid_size  # noqa: E402

LRS = ("0.0003", "0.001", "0.003", "0.01", "0.03", "0.1", "0.3", "1.0", "3.0")
WARMUPS = ("0", "50", "100", "200")


def grid_overrides(n_points: int) -> list[str]:
    """``lr x warmup x seed`` with ``n_points`` points: up to 9 rates, 4 warmups, the rest in seeds."""
    n_lr = 5 if n_points <= 100 else len(LRS)
    seeds = math.ceil(n_points / (n_lr * len(WARMUPS)))
    return [f"lr={','.join(LRS[:n_lr])}", f"warmup={','.join(WARMUPS)}", f"seed=range({seeds})"]


def multirun(overrides: list[str]) -> tuple[Any, Any, Any, list[list[str]]]:
    """Hydra's loader, the multirun config, ablate's sweeper and the job list, as in ``python -m ablate -m``."""
    GlobalHydra.instance().clear()
    hydra = Hydra.create_main_hydra2("ablate", create_config_search_path(str(CONF_DIR)))
    cfg = hydra.compose_config("config", overrides, run_mode=RunMode.MULTIRUN)
    context = HydraContext(config_loader=hydra.config_loader, callbacks=Callbacks(cfg))
    sweeper = Plugins.instance().instantiate_sweeper(config=cfg, hydra_context=context, task_function=lambda _: None)
    task = [str(t) for t in OmegaConf.to_container(cfg.hydra.overrides.task) or []]  # type: ignore[union-attr]
    parsed = OverridesParser.create(config_loader=hydra.config_loader).parse_overrides(
        sweeper._parse_config() + task  # type: ignore[attr-defined]
    )
    jobs = [list(job) for batch in BasicSweeper.split_arguments(parsed, None) for job in batch]
    assert grid_size(parsed) == len(jobs)
    return hydra.config_loader, cfg, sweeper, jobs


def timed(fn: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def compare(n_points: int, repeats: int) -> None:
    loader, cfg, sweeper, jobs = multirun(grid_overrides(n_points))
    jobs = jobs[:n_points]
    slow_s, fast_s = [], []
    for _ in range(repeats):
        t_slow, slow = timed(lambda: [sweeper.run_id_of(job) for job in jobs])
        t_fast, fast = timed(lambda: grid_run_ids(loader, cfg, jobs))
        assert fast == slow, "the fast path must give the per-point path's run ids"
        slow_s.append(t_slow)
        fast_s.append(t_fast)
    s, f = statistics.median(slow_s), statistics.median(fast_s)
    print(
        f"{len(jobs):>6} points: per-point {s:8.2f} s ({1e3 * s / len(jobs):6.1f} ms/point)  "
        f"grid_run_ids {f:6.3f} s ({1e3 * f / len(jobs):5.2f} ms/point)  ratio {s / f:6.1f}x  "
        f"(median of {repeats}; ids equal)",
        flush=True,
    )


def fast_only(n_points: int) -> None:
    loader, cfg, _, jobs = multirun(grid_overrides(n_points))
    jobs = jobs[:n_points]
    t, _ = timed(lambda: grid_run_ids(loader, cfg, jobs))
    print(f"{len(jobs):>6} points: grid_run_ids {t:6.2f} s ({1e3 * t / len(jobs):5.2f} ms/point)", flush=True)


def parts() -> None:
    """The remaining per-point costs on the default config (best of 3 x 300 calls each)."""
    loader, cfg, _, _ = multirun(grid_overrides(100))
    grid = Grid(loader, cfg)
    base, _ = grid.base(())
    job = ["lr=0.01", "warmup=100", "seed=7"]
    values = [grid.parse(line)[0] for line in job]
    point = copy.deepcopy(base)  # one point's config, as to_typed sees it (lr given, not interpolated)
    ConfigLoaderImpl._apply_overrides_to_config(values, point)
    typed = OmegaConf.to_object(point)

    def apply_and_restore() -> None:
        from ablate.study.grid import _leaf_slots

        slots = _leaf_slots(base, values)
        assert slots is not None
        ConfigLoaderImpl._apply_overrides_to_config(values, base)
        for parent, key, node, raw in reversed(slots):
            node._val = raw
            parent.__dict__["_content"][key] = node

    def ms(fn: Any) -> float:
        return 1e3 * min(timeit.repeat(fn, number=300, repeat=3)) / 300

    rows = {
        "apply 3 overrides in place + restore": ms(apply_and_restore),
        "OmegaConf.to_object (in to_typed)": ms(lambda: OmegaConf.to_object(point)),
        "validate (in to_typed)": ms(lambda: validate(typed)),  # type: ignore[arg-type]
        "run_id": ms(lambda: run_id(typed)),  # type: ignore[arg-type]
        "whole point (grid.run_id)": ms(lambda: grid.run_id(job)),
        "deepcopy of the config (what in place saves)": ms(lambda: copy.deepcopy(base)),
        "full Hydra composition (per-point path)": 1e3
        * min(timeit.repeat(lambda: loader.load_sweep_config(master_config=cfg, sweep_overrides=job), number=5))
        / 5,
    }
    for name, value in rows.items():
        print(f"  {name:<46} {value:8.3f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,900", help="grid sizes to compare, comma-separated")
    parser.add_argument("--repeats", type=int, default=1, help="alternating repeats per size (median)")
    parser.add_argument("--fast-only", type=int, default=0, help="also time the fast path alone on this many points")
    parser.add_argument("--parts", action="store_true", help="print the remaining per-point costs")
    args = parser.parse_args()
    register_configs()
    for size in (int(s) for s in args.sizes.split(",") if s):
        compare(size, args.repeats)
    if args.fast_only:
        fast_only(args.fast_only)
    if args.parts:
        parts()
    GlobalHydra.instance().clear()


if __name__ == "__main__":
    main()
