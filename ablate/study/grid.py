"""Validating a study's grid fast, counting it without enumerating it, and asking before a very large one.

The sweeper checks every grid point before any run starts: it composes the point's config, validates it and
computes its ``run_id``. Composing a point with Hydra costs ~0.1 s (the defaults list, every YAML file, the
Hydra node), so a 900-point grid took 100 s and a 10^6-point grid a day, in silence.

``grid_run_ids`` gives the same ids (and the same first error) far faster. Hydra composes a config in two
stages: the config-group overrides (``optimizer=adam``, ``+sweep=<name>``, ``hydra/launcher=...``) choose the
defaults list, which is composed; the plain value overrides (``lr=0.1``, ``+key=v``, ``++key=v``, ``~key``)
are then applied to the composed config, in order, by ``ConfigLoaderImpl._apply_overrides_to_config``. So
only the first stage needs a full composition, once per distinct combination of group overrides; each point
then applies its value overrides with Hydra's own function to that cached config. Where an override just sets
an existing leaf (the common ``key=value``), it is applied in place and the leaf put back afterwards instead of
copying the whole config; anything else (a list or dict value, ``+``, ``++``, ``~``) gets a copy. Each
distinct override string is parsed once. What remains per point is ``ablate.config.to_typed`` (resolving the
config into dataclasses and the cross-field checks) and ``run_id``: the checks compare keys with each other
(``warmup < steps``, ``lr`` interpolated from ``optimizer.default_lr``), and every point needs its own id, so
they stay per point; they cost well under a millisecond (see bench/README.md).

``grid_size`` counts a multirun's points from its parsed overrides (a product of sweep lengths, ranges
included) without building the grid; ``confirm_large_grid`` asks before a study above ``LARGE_GRID`` runs.

Over 300 lines because it is one algorithm (cache, fast path, fallback, count) whose parts need each other.
"""

from __future__ import annotations

import copy
import decimal
import math
import time
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from omegaconf import DictConfig, OmegaConf, open_dict

from ablate.checks import ConfigError
from ablate.config import Config, run_id, to_typed

LARGE_GRID = 1000
"""Studies with more runs than this ask for confirmation (or ``--yes``) before anything is validated or run."""

PROGRESS_EVERY_S = 1.0  # ``progress`` is called at most about this often


class GridConfigError(ConfigError):
    """A grid point that is not a valid run. ``overrides``: the point's overrides; ``message``: the one line.

    ``str(err)`` reads ``in run [optimizer=sgd warmup=5000]: warmup=5000 is not allowed ...``.
    """

    def __init__(self, overrides: Sequence[str], message: str) -> None:
        self.overrides = list(overrides)
        self.message = message
        super().__init__(f"in run [{' '.join(self.overrides) or '(no overrides)'}]: {message}")


# ------------------------------------------------------------------------------------------ run ids
def grid_run_ids(
    loader: Any,
    master_config: DictConfig,
    jobs: Sequence[Sequence[str]],
    progress: Callable[[int, int], None] | None = None,
    *,
    clock: Callable[[], float] = time.monotonic,
    on_config: Callable[[Config], None] | None = None,
) -> list[str]:
    """The ``run_id`` of every job (grid point), equal to composing each with Hydra and ``to_typed``.

    ``loader``: the sweeper's ``hydra_context.config_loader``; ``master_config``: the sweeper's ``config`` (the
    multirun's composed config); ``jobs``: each point's override strings, as the sweeper enumerates them.
    Points are checked in order, so the first invalid point is the one the per-point path reports; it raises
    ``GridConfigError`` (a ``ConfigError``) carrying that point's overrides. A point Hydra cannot compose (a
    value of the wrong type, an unknown key) raises it too, with the first line of Hydra's message.

    ``progress(done, total)``, if given, is called at most about once a second while the grid is checked, and
    once more with ``done == total`` at the end if it was called before (so that small grids stay silent).
    ``on_config(config)``, if given, sees every point's typed config (the sweeper collects the user's workloads).
    """
    grid = Grid(loader, master_config)
    total = len(jobs)
    ids: list[str] = []
    last = clock()
    reported = False
    for done, job in enumerate(jobs):
        if progress is not None and clock() - last >= PROGRESS_EVERY_S:
            progress(done, total)
            reported = True
            last = clock()
        ids.append(grid.run_id(list(job), on_config))
    if progress is not None and reported:
        progress(total, total)
    return ids


class Grid:
    """The composed configs per group combination, and the parsed overrides, of one multirun."""

    def __init__(self, loader: Any, master_config: DictConfig) -> None:
        from hydra.core.override_parser.overrides_parser import OverridesParser

        self.loader = loader
        self.master = master_config
        self.parser = OverridesParser.create()
        self.parsed: dict[str, tuple[Any, bool]] = {}
        self.bases: dict[tuple[str, ...], tuple[DictConfig, dict[str, Any]]] = {}
        self.compositions = 0
        self.can_split = hasattr(loader, "_parse_overrides_and_create_caching_repo")
        """Whether group and value overrides can be told apart (Hydra's ``ConfigLoaderImpl``); else every point is
        composed in full."""
        self._group_exists = self._group_check()
        self._is_group: dict[str, bool] = {}

    def _group_check(self) -> Callable[[str], bool]:
        """Hydra's own test for "is this override a config group" (the repository behind its defaults list)."""
        if not self.can_split:  # not Hydra's ConfigLoaderImpl: compose every point in full (always correct)
            return lambda key: True
        make_repo = self.loader._parse_overrides_and_create_caching_repo
        hydra_overrides = list(OmegaConf.to_container(self.master.hydra.overrides.hydra) or [])  # type: ignore[arg-type]
        _, repo = make_repo(self.master.hydra.job.config_name, hydra_overrides)
        return repo.group_exists  # type: ignore[no-any-return]

    def parse(self, line: str) -> tuple[Any, bool]:
        """One override string, parsed once: the ``Override`` and whether it is a value override."""
        known = self.parsed.get(line)
        if known is None:
            try:
                override = self.parser.parse_overrides([line])[0]
            except Exception as err:  # HydraException (OverrideParseException): not a valid override
                raise GridCompositionError(err) from err
            known = self.parsed[line] = (override, self.is_value_override(override))
        return known

    def is_value_override(self, override: Any, hydra_values: bool = False) -> bool:
        """True where Hydra applies the override after composition (``config_overrides`` of its defaults list).
        ``hydra.*`` value overrides count as group overrides (the run id ignores the ``hydra`` node) unless
        ``hydra_values``."""
        key = override.key_or_group
        if override.is_sweep_override() or override.package is not None:
            return False
        if (override.is_hydra_override() and not hydra_values) or key == "hydra":
            return False
        is_group = self._is_group.get(key)
        if is_group is None:
            is_group = self._is_group[key] = bool(self._group_exists(key))
        return isinstance(override.value(), dict) or not is_group

    def base(self, group_lines: tuple[str, ...]) -> tuple[DictConfig, dict[str, Any]]:
        """The composed config (``hydra`` removed) of one combination of group overrides, composed once."""
        cached = self.bases.get(group_lines)
        if cached is None:
            self.compositions += 1
            cfg = self.loader.load_sweep_config(master_config=self.master, sweep_overrides=list(group_lines))
            with open_dict(cfg):
                del cfg["hydra"]
            OmegaConf.set_readonly(cfg, False)
            cached = self.bases[group_lines] = (cfg, copy.deepcopy(OmegaConf.get_cache(cfg)))
        return cached

    def run_id(self, job: list[str], on_config: Callable[[Config], None] | None = None) -> str:
        try:
            parsed = [self.parse(line) for line in job]
            group_lines = tuple(line for line, (_, is_value) in zip(job, parsed, strict=True) if not is_value)
            values = [override for override, is_value in parsed if is_value]
            try:
                base, cache = self.base(group_lines)
            except Exception as err:  # Hydra could not compose this point
                raise GridCompositionError(err) from err
            return _apply_and_identify(base, cache, values, on_config)
        except GridCompositionError as failed:
            raise GridConfigError(job, _first_lines(failed.error)) from None
        except ConfigError as err:
            raise GridConfigError(job, str(err)) from None


def _identify(config: Config, on_config: Callable[[Config], None] | None) -> str:
    if on_config is not None:
        on_config(config)
    return run_id(config)


class GridCompositionError(Exception):
    """Hydra could not parse or compose a point; ``error``: Hydra's exception."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


def _apply_and_identify(
    base: DictConfig, cache: dict[str, Any], overrides: list[Any], on_config: Callable[[Config], None] | None = None
) -> str:
    """Apply value overrides as Hydra does, then ``to_typed`` and ``run_id``; ``base`` is left as it was."""
    from hydra._internal.config_loader_impl import ConfigLoaderImpl

    saved = _leaf_slots(base, overrides)
    if saved is None:  # not plain leaf assignments: work on a copy
        cfg = copy.deepcopy(base)
        try:
            ConfigLoaderImpl._apply_overrides_to_config(overrides, cfg)
        except Exception as err:
            raise GridCompositionError(err) from err
        return _identify(to_typed(cfg), on_config)
    try:
        try:
            ConfigLoaderImpl._apply_overrides_to_config(overrides, base)
        except Exception as err:
            raise GridCompositionError(err) from err
        return _identify(to_typed(base), on_config)
    finally:
        for parent, key, node, raw in reversed(saved):  # put every touched leaf back, node and value
            node._val = raw  # the node's own earlier value: no need to validate (or parse) it again
            parent.__dict__["_content"][key] = node
        if OmegaConf.get_cache(base) != cache:  # a cached resolver ran: forget what it stored
            OmegaConf.set_cache(base, cache)


def _leaf_slots(base: DictConfig, overrides: list[Any]) -> list[tuple[DictConfig, str, Any, Any]] | None:
    """For overrides that each set an existing leaf value (``key=value``, a scalar), where each leaf sits, so it
    can be put back; None if any override does more (adds, deletes, lists, dicts, interpolated parents)."""
    from omegaconf import ValueNode
    from omegaconf._utils import split_key

    slots = []
    for o in overrides:
        if o.is_add() or o.is_force_add() or o.is_delete():
            return None
        if isinstance(o.value(), dict | list):
            return None
        parts = split_key(o.key_or_group)
        parent: Any = base
        for part in parts[:-1]:
            parent = parent._get_node(part) if isinstance(parent, DictConfig) else None
            if not isinstance(parent, DictConfig) or parent._is_interpolation() or parent._is_missing():
                return None
            if parent._is_none():
                return None
        node = parent._get_node(parts[-1]) if isinstance(parent, DictConfig) else None
        if not isinstance(node, ValueNode):
            return None
        slots.append((parent, parts[-1], node, node._value()))
    return slots


def _first_lines(err: BaseException) -> str:
    """Hydra's message and its cause's, first line of each: ``Error merging override lr=x: Value 'x' ...``."""

    def first(e: BaseException) -> str:
        lines = str(e).strip().splitlines()
        return lines[0].strip() if lines else type(e).__name__

    head = first(err)
    cause = err.__cause__
    if cause is not None and first(cause) not in head:
        return f"{head.rstrip('.:')}: {first(cause)}"
    return head


# ------------------------------------------------------------------------------------------- counting
def grid_size(parsed_overrides: Sequence[Any]) -> int:
    """How many points Hydra's basic sweeper makes of these parsed overrides, without enumerating them.

    The product over the distinct keys of each key's last override's length: 1 for a plain value, the number
    of choices for ``a,b,c`` / ``choice(...)``, the length of ``range(start, stop, step)`` (floats too) and the
    matching options for ``glob(...)``. An interval sweep raises Hydra's error, as the sweeper would.
    """
    from hydra.errors import HydraException

    sizes: dict[str, int] = {}
    for o in parsed_overrides:
        key = o.get_key_element()
        if not o.is_sweep_override():
            sizes[key] = 1
        elif o.is_range_sweep():
            sizes[key] = _range_length(o._value.range())
        elif o.is_choice_sweep():
            value = o._value
            if isinstance(value, list):
                sizes[key] = len(value)
            elif hasattr(value, "list"):  # ChoiceSweep (simple a,b,c or choice(...))
                sizes[key] = len(value.list)
            else:  # glob(...): the matching options of a config group, a short list
                sizes[key] = sum(1 for _ in o.sweep_iterator())
        else:
            raise HydraException(f"BasicSweeper does not support sweep type : {o.value_type.name}")
    return math.prod(sizes.values())


def _range_length(r: Any) -> int:
    if isinstance(r, range):
        return len(r)
    # Hydra's FloatRange: Decimal start, stop and step, iterated by repeated addition while short of stop
    start, stop, step = r.start, r.stop, r.step
    if step == 0:
        from hydra.errors import HydraException

        raise HydraException(f"Invalid range values (start:{start}, stop:{stop}, step:{step})")
    if (step > 0 and start >= stop) or (step < 0 and start <= stop):
        return 0
    n = int(((stop - start) / step).to_integral_value(rounding=decimal.ROUND_CEILING))
    if n <= 100_000:  # exact: count the way Hydra iterates (repeated Decimal addition)
        return sum(1 for _ in copy.copy(r))
    return n


# --------------------------------------------------------------------------------------- confirmation
def large_grid_message(n_points: int) -> str:
    """The one line the caller prints when a large study is not confirmed."""
    return (
        f"study of {n_points} runs is larger than {LARGE_GRID}: nothing was run; pass --yes to start it "
        "(or narrow the grid)"
    )


def progress_message(done: int, total: int) -> str:
    """``validating 900 runs: 300/900``: a line for ``grid_run_ids``' progress callback."""
    return f"validating {total} runs: {done}/{total}"


def confirm_large_grid(n_points: int, yes: bool, stdin: TextIO, stderr: TextIO) -> bool:
    """Whether to go on with a study of ``n_points`` runs.

    Up to ``LARGE_GRID`` points, or with ``yes`` (``--yes``): True without asking. Above it, on a terminal:
    ask ``study of N runs; continue? [y/N]`` on ``stderr`` and read one line (``y`` or ``yes`` goes on).
    Otherwise (no terminal: a script, a batch job) False without reading; the caller then prints
    ``large_grid_message(n_points)`` and stops.
    """
    if yes or n_points <= LARGE_GRID:
        return True
    isatty = getattr(stdin, "isatty", None)
    if not (callable(isatty) and isatty()):
        return False
    stderr.write(f"study of {n_points} runs; continue? [y/N] ")
    stderr.flush()
    answer = stdin.readline()
    return answer.strip().lower() in ("y", "yes")
