"""User code by import path: ``package.module:name`` (or ``package.module.name``), found the way Python finds it.

The user's package must be importable from where ablate runs: installed (``pip install -e .``), or in the
current directory (``python -m ablate`` puts it first on ``sys.path``), or on ``PYTHONPATH``. Every failure is a
``ConfigError`` of one line that names the config key, the target and the fix. Torch-free.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import inspect
import sys
from pathlib import Path
from typing import Any

from ablate.checks import ConfigError, check_target


def split_target(target: str) -> tuple[str, str]:
    """``a.b:C`` -> (``a.b``, ``C``); ``a.b.C`` -> (``a.b``, ``C``) (the last dotted part is the attribute)."""
    if ":" in target:
        module, _, attr = target.partition(":")
        return module, attr
    module, _, attr = target.rpartition(".")
    return module, attr


def resolve(key: str, target: str) -> Any:
    """The object ``target`` names; ``key`` is the config key that holds it (for the message)."""
    check_target(key, target, "mypkg.nets:MyNet")
    module_name, attr = split_target(target)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        missing = err.name or module_name
        raise ConfigError(
            f"{key}={target} cannot be imported: no module named {missing!r}; install the package (pip install -e "
            "<your project>), run from the directory that holds it, or add it to PYTHONPATH"
        ) from None
    except Exception as err:  # the user's module raised while importing
        raise ConfigError(
            f"{key}={target} cannot be imported: importing {module_name} raised {type(err).__name__}: "
            f"{str(err).strip().splitlines()[0] if str(err).strip() else ''}"
        ) from None
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            names = sorted(n for n in dir(module) if not n.startswith("_"))[:12]
            raise ConfigError(
                f"{key}={target} is not found: module {module_name} has no {attr!r}; it has {', '.join(names)}"
            )
        obj = getattr(obj, part)
    if not callable(obj):
        raise ConfigError(f"{key}={target} is not callable ({type(obj).__name__}): name a class or a function")
    return obj


def accepted(fn: Any, offered: dict[str, Any]) -> dict[str, Any]:
    """The entries of ``offered`` that ``fn`` takes as keyword arguments (all of them if it takes ``**kwargs``)."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return {}
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return dict(offered)
    return {k: v for k, v in offered.items() if k in params}


def code_identity(target: str) -> dict[str, str]:
    """Provenance of the code behind ``target``: its distribution's version when installed, and the sha256 of
    the module's file (so an edited file in a checkout shows)."""
    module_name, _ = split_target(target)
    out: dict[str, str] = {"target": target}
    top = module_name.split(".")[0]
    try:
        out["version"] = importlib.metadata.version(top)
    except importlib.metadata.PackageNotFoundError:
        pass
    module = sys.modules.get(module_name)
    path = getattr(module, "__file__", None)
    if path and Path(path).is_file():
        out["file_sha256"] = hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]
    return out
