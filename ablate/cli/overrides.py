"""An early check of the command line's overrides, before Hydra composes or writes anything.

Hydra reports an unknown key or group option in several lines and without the allowed values; this check
does it in one line with a suggestion. It also lists the options of every config group (the YAML files under
``conf/``) for the check and for ``--help``.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

from ablate.checks import ConfigError
from ablate.config import CONF_DIR, GROUPS, SWEEPS_DIR, Config
from ablate.study.names import check_study_name

TOP_KEYS = [f.name for f in fields(Config) if f.name not in GROUPS]


def group_options(group: str, user_dirs: Sequence[Path] = ()) -> list[str]:
    """The options of a config group: the YAML files in ``conf/<group>/`` and in the user's config directories."""
    return sorted({p.stem for root in (CONF_DIR, *user_dirs) for p in (root / group).glob("*.yaml")})


def user_config_dirs(config_dir: str | None, overrides: Sequence[Any]) -> list[Path]:
    """The user's config directories: Hydra's ``--config-dir`` and ``hydra.searchpath=[file://...]`` entries."""
    dirs = [Path(config_dir)] if config_dir else []
    for o in overrides:
        if o.key_or_group == "hydra.searchpath" and not o.is_delete():
            value = o.value()
            for entry in value if isinstance(value, list) else [value]:
                text = str(entry)
                if text.startswith("file://"):
                    dirs.append(Path(text.removeprefix("file://")))
                elif "://" not in text:
                    dirs.append(Path(text))
    return dirs


def load_yaml(path: Path) -> dict[str, Any]:
    """A config file as plain data (interpolations left as text)."""
    from omegaconf import OmegaConf

    data = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
    assert isinstance(data, dict), f"{path} is not a mapping"
    return {str(k): v for k, v in data.items()}


def default_options() -> dict[str, str]:
    """The default option of each group, read from the defaults list of ``conf/config.yaml``."""
    chosen: dict[str, str] = {}
    for entry in load_yaml(CONF_DIR / "config.yaml").get("defaults", []):
        if not isinstance(entry, str) and len(entry) == 1:
            ((key, value),) = entry.items()
            if key in GROUPS:
                chosen[key] = str(value)
    return chosen


def _suggest(word: str, candidates: list[str]) -> str:
    close = difflib.get_close_matches(word, candidates, n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'? " if close else ""


def _values(override: object) -> list[str] | None:
    """The string values of an override (every value of a choice/range sweep), or None if not listable."""
    if override.is_sweep_override():  # type: ignore[attr-defined]
        if override.is_discrete_sweep():  # type: ignore[attr-defined]
            return [str(v) for v in override.sweep_string_iterator()]  # type: ignore[attr-defined]
        return None
    return [str(override.value())]  # type: ignore[attr-defined]


def _raw_values(override: object) -> list[object]:
    """Every parsed value of an override (each element of a choice sweep); empty for ranges and globs."""
    if override.is_sweep_override():  # type: ignore[attr-defined]
        return list(override.sweep_iterator()) if override.is_discrete_sweep() else []  # type: ignore[attr-defined]
    return [override.value()]  # type: ignore[attr-defined]


def sweep_options() -> list[str]:
    """The named studies: the YAML files in ``sweeps/``."""
    return sorted(p.stem for p in SWEEPS_DIR.glob("*.yaml"))


def check_sweep(override: object) -> None:
    """``+sweep=<name>`` must name a file in ``sweeps/`` and be added with ``+``."""
    options = sweep_options()
    for value in _values(override) or []:
        if value not in options:
            raise ConfigError(
                f"sweep={value} is not a named study: {_suggest(value, options)}choose one of {', '.join(options)} "
                "(files in sweeps/)"
            )
    if not override.is_add():  # type: ignore[attr-defined]
        raise ConfigError(f"write +sweep={override.value()} (with a +): sweep is not in the default config")  # type: ignore[attr-defined]


def hydra_groups() -> dict[str, list[str]]:
    """Hydra's own config groups (``hydra/launcher``, ``hydra/sweeper``, ...) and their options.

    The options are the YAML files in ``conf/hydra/<group>/`` and in Hydra's bundled ``hydra/conf``, and what
    the ConfigStore holds once ablate's and the installed plugins' configs are registered (``basic``,
    ``submitit_slurm``, ...). Plugins are imported only when a command names a Hydra group.
    """
    import hydra
    from hydra.core.config_store import ConfigStore
    from hydra.core.plugins import Plugins

    from ablate.config import register_configs

    register_configs()
    Plugins.instance()  # imports Hydra's core and installed plugins, which store their configs
    found: dict[str, set[str]] = {}
    for root in (Path(hydra.__file__).parent / "conf" / "hydra", CONF_DIR / "hydra"):
        for group in root.iterdir() if root.is_dir() else []:
            if group.is_dir():
                found.setdefault(group.name, set()).update(p.stem for p in group.glob("*.yaml"))
    for group, entries in ConfigStore.instance().repo.get("hydra", {}).items():
        if isinstance(entries, dict):
            found.setdefault(group, set()).update(name.removesuffix(".yaml") for name in entries)
    return {group: sorted(options) for group, options in found.items()}


def check_hydra_group(override: object) -> None:
    """``hydra/<group>=<option>`` must name one of Hydra's groups and an option Hydra can find for it."""
    key = override.key_or_group  # type: ignore[attr-defined]
    if override.is_delete():  # type: ignore[attr-defined]
        return
    groups = hydra_groups()
    group = key.removeprefix("hydra/")
    if group not in groups:
        names = sorted(f"hydra/{g}" for g in groups)
        raise ConfigError(f"{key} is not a Hydra config group: {_suggest(key, names)}choose one of {', '.join(names)}")
    options = groups[group]
    for value in _values(override) or []:
        if value not in options:
            local = f" (files in conf/{key}/ or Hydra's plugins)" if (CONF_DIR / key).is_dir() else ""
            raise ConfigError(
                f"{key}={value} is not an option: {_suggest(value, options)}choose one of {', '.join(options)}{local}"
            )


def precheck_overrides(args: list[str]) -> None:
    """Check the ``key=value`` overrides among ``args`` against the schemas; raise ConfigError on a mistake."""
    if not CONF_DIR.is_dir():
        raise ConfigError(
            f"ablate's config directory {CONF_DIR} is missing; install ablate from a checkout with "
            "`pip install -e .` so that conf/ sits next to the package"
        )
    from hydra._internal.utils import get_args_parser
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    parsed, _ = get_args_parser().parse_known_args(args)
    try:
        overrides = OverridesParser.create().parse_overrides(parsed.overrides)
    except HydraException as err:
        raise ConfigError(f"cannot parse the overrides: {str(err).splitlines()[0]}") from None
    user_dirs = user_config_dirs(parsed.config_dir, overrides)
    for d in user_dirs:
        if not d.is_dir():
            raise ConfigError(f"config directory {d} does not exist (from --config-dir or hydra.searchpath)")
    chosen = {group: [option] for group, option in default_options().items()}
    for o in overrides:  # group choices first: nested keys are checked against the chosen options
        if o.key_or_group == "sweep":
            check_sweep(o)
            continue
        if o.key_or_group in GROUPS and not o.is_delete():
            options = group_options(o.key_or_group, user_dirs)
            values = _values(o)
            for value in values or []:
                if value not in options:
                    where = f"conf/{o.key_or_group}/" + "".join(
                        f" or {d.absolute() / o.key_or_group}/" for d in user_dirs
                    )
                    raise ConfigError(
                        f"{o.key_or_group}={value} is not an option: {_suggest(value, options)}"
                        f"choose one of {', '.join(options)} (files in {where})"
                    )
            if values:
                chosen[o.key_or_group] = values
    for o in overrides:
        key = o.key_or_group
        if key.startswith("hydra/"):
            check_hydra_group(o)
            continue
        if key == "hydra.launcher.stack_size":
            from ablate.study.stacks import check_stack_size

            for size in _raw_values(o):
                check_stack_size(size)  # type: ignore[arg-type]
            continue
        if key in GROUPS or key == "sweep" or o.is_hydra_override():
            continue
        if o.is_add() and (CONF_DIR / key).is_dir():
            continue  # an extra config group added with +group=option
        head, _, rest = key.partition(".")
        raw = _raw_values(o)
        if not rest:
            if head not in TOP_KEYS:
                groups = ", ".join(GROUPS)
                raise ConfigError(
                    f"unknown config key '{key}': {_suggest(head, TOP_KEYS + list(GROUPS))}top-level keys are "
                    f"{', '.join(TOP_KEYS)}; config groups are {groups} (see python -m ablate --help)"
                )
            _check_value(Config, head, "", raw)
            if head == "study" and not o.is_delete():
                for value in _values(o) or []:
                    check_study_name(value)  # before Hydra makes outputs/studies/<study>
            continue
        if head not in GROUPS:
            raise ConfigError(
                f"unknown config key '{key}': '{head}' is not a config group; "
                f"{_suggest(head, list(GROUPS))}groups are {', '.join(GROUPS)}"
            )
        for option in chosen.get(head, []):
            schema = GROUPS[head].get(option)
            if schema is None:
                continue  # the user's own config file: its keys are its target's arguments
            names = [f.name for f in fields(schema)]
            if rest.partition(".")[0] == "args" and "args" in names:
                continue  # the arguments of the user's target: any key
            if rest not in names:
                raise ConfigError(
                    f"unknown config key '{key}' for {head}={option}: {_suggest(rest, names)}"
                    f"its keys are {', '.join(names)}"
                )
            _check_value(schema, rest, f"{head}.", raw)


_TYPE_WORDS = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}


def _check_value(schema: type, key: str, prefix: str, raw: list[object]) -> None:
    """Assign each value to a fresh structured node of ``schema``, so a wrong type fails here in one line."""
    from omegaconf import OmegaConf
    from omegaconf.errors import ValidationError

    node = OmegaConf.structured(schema)
    for value in raw:
        try:
            node[key] = value
        except ValidationError:
            kind = node._get_node(key)._metadata.ref_type  # type: ignore[union-attr]
            name = _TYPE_WORDS.get(kind, getattr(kind, "__name__", str(kind)))
            raise ConfigError(f"{prefix}{key}={value} is not allowed: {prefix}{key} takes {name}") from None
