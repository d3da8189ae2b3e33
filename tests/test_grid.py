"""Grid validation: the fast path gives the per-point path's run ids and errors; grids are counted, not built;
large studies ask first."""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from hydra._internal.callbacks import Callbacks
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra._internal.hydra import Hydra
from hydra._internal.utils import create_config_search_path
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.plugins import Plugins
from hydra.errors import HydraException
from hydra.types import HydraContext, RunMode
from omegaconf import DictConfig, OmegaConf

from ablate.checks import ConfigError
from ablate.config import CONF_DIR, register_configs
from ablate.study.grid import (
    LARGE_GRID,
    Grid,
    GridConfigError,
    confirm_large_grid,
    grid_run_ids,
    grid_size,
    large_grid_message,
    progress_message,
)
from ablate.study.sweep_compose import SweepComposer


@dataclass
class Multirun:
    """What ablate's sweeper holds in ``sweep()``: Hydra's loader, the multirun config, and the grid's jobs."""

    loader: Any
    config: DictConfig
    sweeper: Any
    parsed: list[Any]
    jobs: list[list[str]]

    def slow_run_ids(self) -> list[str]:
        """The per-point path: the sweeper composes every point with Hydra."""
        return [self.sweeper.run_id_of(job) for job in self.jobs]


@pytest.fixture
def multirun() -> Iterator[Any]:
    """``multirun(*overrides)``: set up a multirun as ``python -m ablate -m <overrides>`` does, up to the grid."""
    register_configs()

    def make(*overrides: str) -> Multirun:
        GlobalHydra.instance().clear()
        hydra = Hydra.create_main_hydra2("ablate", create_config_search_path(str(CONF_DIR)))
        cfg = hydra.compose_config("config", list(overrides), run_mode=RunMode.MULTIRUN)
        context = HydraContext(config_loader=hydra.config_loader, callbacks=Callbacks(cfg))
        sweeper = Plugins.instance().instantiate_sweeper(
            config=cfg, hydra_context=context, task_function=lambda _: None
        )
        task = OmegaConf.to_container(cfg.hydra.overrides.task)
        assert isinstance(task, list)
        params = sweeper._parse_config() + [str(t) for t in task]  # type: ignore[attr-defined]
        parsed = OverridesParser.create(config_loader=hydra.config_loader).parse_overrides(params)
        jobs = [list(job) for batch in BasicSweeper.split_arguments(parsed, None) for job in batch]
        return Multirun(hydra.config_loader, cfg, sweeper, parsed, jobs)

    yield make
    GlobalHydra.instance().clear()


class CountingLoader:
    """Hydra's loader, counting full compositions (``load_sweep_config``)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.composed: list[list[str]] = []

    def load_sweep_config(self, master_config: DictConfig, sweep_overrides: list[str]) -> DictConfig:
        self.composed.append(list(sweep_overrides))
        return self.inner.load_sweep_config(master_config=master_config, sweep_overrides=sweep_overrides)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


GROUP_KEYS = ("model", "data", "optimizer", "schedule", "tracker", "skew", "probes", "+sweep")


def group_combinations(jobs: Sequence[Sequence[str]]) -> set[tuple[str, ...]]:
    return {tuple(o for o in job if o.split("=")[0] in GROUP_KEYS or o.startswith("hydra")) for job in jobs}


# ------------------------------------------------------------------------------- equality with Hydra
GRIDS = {
    "groups and values": (
        "optimizer=sgd,adam",
        "warmup=100",
        "lr=0.1,0.01",
        "data.noise_scale=1,2",
        "model.hidden_sizes=[64,64],[32]",
        "++seed=3",
    ),
    "named study": ("+sweep=warmup-skew", "seed=0", "warmup=0,32"),
    "two named studies": ("+sweep=warmup-sgd,warmup-skew", "seed=1,2"),
    "group and nested value": ("optimizer=adam,rmsprop", "optimizer.weight_decay=0,0.01", "schedule=constant,cosine"),
    "values only": ("lr=0.1,0.2", "warmup=0,10,20", "seed=range(2)", "study='a/b'", "device=cpu"),
}


@pytest.mark.parametrize("name", GRIDS)
def test_run_ids_equal_the_per_point_path_with_one_composition_per_group_combination(name: str, multirun: Any) -> None:
    m = multirun(*GRIDS[name])
    assert len(m.jobs) >= 4
    loader = CountingLoader(m.loader)
    fast = grid_run_ids(loader, m.config, m.jobs)
    assert fast == m.slow_run_ids()
    assert len(set(fast)) == len(m.jobs)  # every point is a different run
    combinations = group_combinations(m.jobs)
    assert len(loader.composed) == len(combinations)
    assert {tuple(c) for c in loader.composed} == combinations


def test_the_named_study_grid_is_composed_twice(multirun: Any) -> None:
    m = multirun(*GRIDS["named study"])  # optimizer: adam, skew: none,spurious; skew.steps, warmup: values
    assert len(m.jobs) == 12
    loader = CountingLoader(m.loader)
    grid_run_ids(loader, m.config, m.jobs)
    assert len(loader.composed) == 2


def test_a_loader_without_hydras_internals_composes_every_point_and_agrees(multirun: Any) -> None:
    m = multirun("lr=0.1,0.2", "warmup=0,10")

    class Plain:  # only the public ConfigLoader method the fast path needs
        composed = 0

        def load_sweep_config(self, master_config: DictConfig, sweep_overrides: list[str]) -> DictConfig:
            Plain.composed += 1
            return m.loader.load_sweep_config(master_config=master_config, sweep_overrides=sweep_overrides)

    assert grid_run_ids(Plain(), m.config, m.jobs) == m.slow_run_ids()
    assert Plain.composed == len(m.jobs)


# points that set different keys: a value one point set must not leak into the next
RAGGED = [
    ["lr=0.5", "seed=3", "optimizer.beta2=0.99"],
    [],
    ["warmup=10", "model.hidden_sizes=[8]"],
    ["model.activation=tanh", "++data.noise_scale=2"],
    ["lr=${diverge_factor}"],  # an interpolation as the value
    ["optimizer=sgd", "lr=0.5"],
    ["optimizer=sgd"],
    ["warmup=auto", "lr_scale=2", "steps=3000"],
    [],
]


def test_points_setting_different_keys_each_get_their_own_config(multirun: Any) -> None:
    m = multirun("lr=0.1,0.2")
    fast = grid_run_ids(m.loader, m.config, RAGGED)
    assert fast == [m.sweeper.run_id_of(job) for job in RAGGED]
    assert fast[1] == fast[-1] and len(set(fast)) == len(RAGGED) - 1


def test_the_cached_config_is_left_as_composed(multirun: Any) -> None:
    m = multirun("lr=0.1,0.2")
    grid = Grid(m.loader, m.config)
    base, _ = grid.base(())
    before = OmegaConf.to_yaml(base)  # unresolved: interpolations such as lr's stay text
    nodes = {key: base._get_node(key) for key in base}
    for job in [*m.jobs, *RAGGED, ["warmup=5000"], ["lr=abc"], ["seed=1", "lr=abc"]]:
        try:
            grid.run_id(job)
        except GridConfigError:
            pass
    assert OmegaConf.to_yaml(base) == before
    assert all(base._get_node(key) is node for key, node in nodes.items())


# ---------------------------------------------------------------------------------------- errors
def test_an_invalid_point_raises_with_its_overrides_and_the_per_point_message(
    multirun: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    m = multirun("optimizer=sgd,adam", "warmup=0,5000", "steps=1000")
    with pytest.raises(GridConfigError) as caught:
        grid_run_ids(m.loader, m.config, m.jobs)
    err = caught.value
    assert isinstance(err, ConfigError)
    assert err.overrides == ["optimizer=sgd", "warmup=5000", "steps=1000"]  # the first bad point
    assert "warmup=5000 is not allowed with steps=1000" in err.message and "\n" not in err.message
    with pytest.raises(SystemExit):
        m.slow_run_ids()
    assert capsys.readouterr().err.strip() == f"error: {err}; nothing was run"


@pytest.mark.parametrize(
    ("overrides", "bad", "words"),
    [
        (("data.noise_scale=1,abc",), ["data.noise_scale=abc"], "could not be converted to Float"),
        (("optimizer=sgd,nope",), ["optimizer=nope"], "Could not find 'optimizer/nope'"),
        (("lr=0.1,0.2", "~study"), ["lr=0.1", "~study=null"], "study=??? is not allowed"),  # deleted
    ],
)
def test_a_point_hydra_cannot_compose_raises_one_line_with_its_overrides(
    overrides: tuple[str, ...], bad: list[str], words: str, multirun: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    m = multirun(*overrides)
    with pytest.raises(GridConfigError) as caught:
        grid_run_ids(m.loader, m.config, m.jobs)
    assert caught.value.overrides == bad
    assert words in caught.value.message and "\n" not in caught.value.message
    try:  # the per-point path fails on the same point: with the same line, or (composing) with Hydra's error
        m.slow_run_ids()
    except SystemExit:
        assert capsys.readouterr().err.strip() == f"error: {caught.value}; nothing was run"
    except HydraException as err:
        assert f"{bad[0]}" in str(err) or words in str(err.__cause__ or err)
    else:
        pytest.fail("the per-point path accepted the grid")


# -------------------------------------------------------------------------------------- progress
def test_progress_is_reported_at_most_once_a_second_and_at_the_end(multirun: Any) -> None:
    m = multirun("lr=0.1,0.2,0.3", "warmup=0,10,20,30")
    now = [0.0]

    def clock() -> float:  # every look at the clock: 0.3 s later
        now[0] += 0.3
        return now[0]

    calls: list[tuple[int, int]] = []
    ids = grid_run_ids(m.loader, m.config, m.jobs, lambda done, total: calls.append((done, total)), clock=clock)
    assert len(ids) == 12
    assert calls[-1] == (12, 12)
    assert all(total == 12 for _, total in calls)
    dones = [done for done, _ in calls]
    assert dones == sorted(set(dones)) and 1 < len(calls) < 12
    assert progress_message(300, 900) == "validating 900 runs: 300/900"


def test_a_quick_grid_reports_no_progress(multirun: Any) -> None:
    m = multirun("lr=0.1,0.2")
    calls: list[tuple[int, int]] = []
    grid_run_ids(m.loader, m.config, m.jobs, lambda done, total: calls.append((done, total)), clock=lambda: 0.0)
    assert calls == []


# -------------------------------------------------------------------------------------- counting
def parse(*overrides: str, loader: Any = None) -> list[Any]:
    return OverridesParser.create(config_loader=loader).parse_overrides(list(overrides))


@pytest.mark.parametrize(
    "overrides",
    [
        ("lr=0.1,0.01", "warmup=0,100,500", "seed=range(5)", "steps=100"),
        ("seed=range(0,10,3)", "warmup=range(10,0,-4)", "optimizer=choice(sgd,adam)"),
        ("lr=range(0.1,0.5,0.1)", "lr_scale=range(1,2,0.25)"),
        ("warmup=0,1", "warmup=0,1,2", "seed=1"),  # the last override of a key wins, as in the sweeper
        ("+sweep=warmup-sgd", "warmup=0", "++seed=1,2", "~study"),
        ("seed=range(3,3)", "lr=0.1"),  # an empty range: no points
        ("model.hidden_sizes=[64,64],[32]", "lr=shuffle(0.1,0.2,0.3)"),
        (),
    ],
)
def test_grid_size_equals_the_sweepers_count(overrides: tuple[str, ...]) -> None:
    parsed = parse(*overrides)
    jobs = [job for batch in BasicSweeper.split_arguments(parsed, None) for job in batch]
    assert grid_size(parsed) == len(jobs)


def test_grid_size_counts_a_glob_over_a_group(multirun: Any) -> None:
    m = multirun("lr=0.1")
    # custom needs a target: a glob over "every optimizer" leaves it out (docs/workloads.md)
    parsed = parse(
        "optimizer=glob(*,exclude=custom)", "schedule=glob(c*,exclude=custom)", "seed=range(4)", loader=m.loader
    )
    jobs = [job for batch in BasicSweeper.split_arguments(parsed, None) for job in batch]
    assert grid_size(parsed) == len(jobs) == 6 * 2 * 4


def test_grid_size_counts_huge_grids_without_building_them() -> None:
    assert grid_size(parse("seed=range(1000000)")) == 10**6
    assert grid_size(parse("seed=range(1000)", "warmup=range(0,100000,100)", "lr=0.1,0.2")) == 2 * 10**6
    assert grid_size(parse("seed=range(1000000)", "data.seed=range(1000000)")) == 10**12
    assert grid_size(parse("lr=range(0,1000,0.001)")) == 10**6
    assert grid_size(parse("lr=range(0,1,0.001)")) == 1000


def test_grid_size_rejects_sweeps_the_sweeper_rejects() -> None:
    with pytest.raises(HydraException, match="INTERVAL_SWEEP"):
        grid_size(parse("lr=interval(0,1)"))
    with pytest.raises(ValueError):
        grid_size(parse("seed=range(0,10,0)"))


# ---------------------------------------------------------------------------------- confirmation
class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_small_grids_and_yes_go_on_without_asking() -> None:
    for n, yes in ((1, False), (LARGE_GRID, False), (LARGE_GRID + 1, True), (10**6, True)):
        stdin, stderr = Terminal("n\n"), io.StringIO()
        assert confirm_large_grid(n, yes, stdin, stderr) is True
        assert stderr.getvalue() == "" and stdin.tell() == 0


def test_a_large_grid_without_a_terminal_stops_without_reading() -> None:
    stdin, stderr = io.StringIO("y\n"), io.StringIO()
    assert confirm_large_grid(LARGE_GRID + 1, False, stdin, stderr) is False
    assert stdin.tell() == 0 and stderr.getvalue() == ""
    message = large_grid_message(10**6)
    assert "1000000 runs" in message and "--yes" in message and "\n" not in message


@pytest.mark.parametrize(
    ("answer", "go_on"), [("y\n", True), ("yes\n", True), (" Y \n", True), ("\n", False), ("n\n", False), ("", False)]
)
def test_a_large_grid_on_a_terminal_asks(answer: str, go_on: bool) -> None:
    stdin, stderr = Terminal(answer), io.StringIO()
    assert confirm_large_grid(2000, False, stdin, stderr) is go_on
    assert stderr.getvalue() == "study of 2000 runs; continue? [y/N] "


# ------------------------------------------------------------------------- the launchers' full configs
SWEEP_GRIDS = {
    **GRIDS,
    "delete and add": ("lr=0.1,0.2", "~probes", "+extra=1,2"),
    "launcher overrides": ("hydra/launcher=stacked", "hydra.launcher.stack_size=3", "seed=range(3)", "lr=0.1"),
    "excluded from the dirname": ("seed=0,1", "hydra.job.config.override_dirname.exclude_keys=[seed]", "lr=0.3"),
}


@pytest.mark.parametrize("name", SWEEP_GRIDS)
def test_the_launchers_sweep_configs_equal_hydras_with_one_composition_per_group_combination(
    name: str, multirun: Any
) -> None:
    m = multirun(*SWEEP_GRIDS[name])
    composer = SweepComposer(m.loader, m.config)
    for job in m.jobs:
        fast = composer.compose(job)
        slow = m.loader.load_sweep_config(master_config=m.config, sweep_overrides=list(job))
        assert OmegaConf.to_yaml(fast) == OmegaConf.to_yaml(slow), job
        assert OmegaConf.is_struct(fast) and OmegaConf.get_cache(fast) == OmegaConf.get_cache(slow)
        assert fast.hydra.job.override_dirname == slow.hydra.job.override_dirname
    assert composer.compositions == len(group_combinations(m.jobs))


def test_sweep_configs_of_ragged_points_and_hydra_overrides_equal_hydras(multirun: Any) -> None:
    m = multirun("lr=0.1,0.2")
    composer = SweepComposer(m.loader, m.config)
    jobs = [*RAGGED, ["hydra.job.name=x", "lr=0.2"], ["lr=0.5"]]
    for job in jobs:
        slow = m.loader.load_sweep_config(master_config=m.config, sweep_overrides=list(job))
        assert OmegaConf.to_yaml(composer.compose(job)) == OmegaConf.to_yaml(slow), job
    cached = composer.bases[()]
    assert "lr" not in cached.hydra.overrides.task and cached.hydra.overrides.task == []  # left as composed


def test_a_job_hydra_cannot_compose_raises_hydras_error(multirun: Any) -> None:
    m = multirun("lr=0.1,0.2")
    composer = SweepComposer(m.loader, m.config)
    for job in (["lr=[1"], ["nosuchkey=1"], ["optimizer=nosuch"]):
        with pytest.raises(HydraException) as fast:
            composer.compose(job)
        with pytest.raises(HydraException) as slow:
            m.loader.load_sweep_config(master_config=m.config, sweep_overrides=job)
        assert str(fast.value) == str(slow.value)


def test_sweep_configs_with_the_sweepers_own_hydra_overrides_equal_hydras(multirun: Any) -> None:
    m = multirun("hydra/launcher=stacked", "seed=range(3)", "lr=0.1,0.2")
    composer = SweepComposer(m.loader, m.config)
    for i, job in enumerate(m.jobs):  # as ablate's sweeper passes them: directory, env and subdir per job
        own = ["hydra.sweep.dir='/tmp/s'", "hydra.job.env_set.ABLATE_MULTIRUN_ID=abc", f"hydra.sweep.subdir='{i}'"]
        job = [*job, *own]
        slow = m.loader.load_sweep_config(master_config=m.config, sweep_overrides=list(job))
        assert OmegaConf.to_yaml(composer.compose(job)) == OmegaConf.to_yaml(slow), job
    assert composer.compositions == 1
