"""What every config schema is built from: a help string per field, and checks that fail with one line.

A check names the bad value, what is allowed and a fix (``steps=0 is not allowed: ...; set e.g. steps=1000``);
``ConfigError`` carries that line to the user without a traceback. Torch-free, like every schema module, so
the command line can check its input before torch loads.
"""

from __future__ import annotations

import math
import re
from dataclasses import field
from typing import Any

from omegaconf import MISSING


class ConfigError(ValueError):
    """A user mistake in the configuration; its message is one line and is shown without a traceback."""


def described(text: str, default: Any = MISSING) -> Any:
    """A dataclass field with a help string (``--help`` and the docs show it)."""
    return field(default=default, metadata={"help": text})


def check(ok: bool, message: str) -> None:
    """Raise ConfigError(message) unless ``ok``."""
    if not ok:
        raise ConfigError(message)


def is_int(value: Any) -> bool:
    """An integer, and not a bool (``True`` is an ``int`` in Python)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_finite(value: Any) -> bool:
    """A finite int or float, and not a bool."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def check_at_least_one(group: str, node: Any, keys: tuple[str, ...]) -> None:
    """``<group>.<key> >= 1`` for each key: counts and sizes."""
    for key in keys:
        value = getattr(node, key)
        check(
            value >= 1, f"{group}.{key}={value} is not allowed: it must be an integer >= 1; set {group}.{key}=1 or more"
        )


TARGET = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*(:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*)?")


def check_target(key: str, target: Any, example: str) -> None:
    """An import path ``module:name`` or ``module.name`` (whether it imports is checked before the first run)."""
    check(
        isinstance(target, str) and TARGET.fullmatch(target) is not None and ("." in target or ":" in target),
        f"{key}={target} is not allowed: give an import path module:name or module.name, e.g. {key}={example}",
    )


NAME = re.compile(r"[A-Za-z0-9_.-]+")


def check_user_part(group: str, name: Any, args: Any) -> None:
    """A user part's ``name`` is a plain label (it goes into run labels and W&B names) and its ``args`` are
    keyword arguments (identifiers)."""
    check(
        isinstance(name, str) and NAME.fullmatch(name) is not None,
        f"{group}.name={name} is not allowed: a name is letters, digits, '.', '_' or '-', e.g. {group}.name=my_part",
    )
    for key in args:
        check(
            isinstance(key, str) and key.isidentifier(),
            f"{group}.args={dict(args)} is not allowed: argument name {key!r} is not a Python identifier; use e.g. "
            f"+{group}.args.width=64",
        )


def first_line(err: BaseException) -> str:
    """The first line of an exception's message ("" when it has none), for a one-line error about user code."""
    text = str(err).strip()
    return text.splitlines()[0] if text else ""
