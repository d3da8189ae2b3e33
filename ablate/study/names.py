"""Study names, where a study's directory is (``outputs/studies/<name>``, or its start time when unnamed), and
the short label of a run in a study's console output."""

from __future__ import annotations

import re
from pathlib import Path

from ablate.checks import ConfigError

STUDY_NAME = re.compile(r"[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*")
STUDIES_ROOT = Path("outputs/studies")  # where ``python -m ablate -m study=<name>`` writes, relative to the cwd
STUDY_FILE = "study.json"  # a study directory's stamp
STUDY_PART_MAX = 100  # characters per part of a study name (file systems allow 255 bytes per name)


def check_study_name(name: str) -> None:
    """A study name is a plain name or a relative path of plain parts below ``outputs/studies``.

    Parts are letters, digits, ``.``, ``_`` and ``-``, joined by ``/``: no absolute path, no ``~``, no ``.`` or
    ``..`` part, no empty part. The empty name means an unnamed study (its directory is its start time).
    Raises ConfigError with one line that names the reason.
    """
    if name == "":
        return
    parts = name.split("/")
    if name.startswith("/"):
        reason = "an absolute path"
    elif name.startswith("~"):
        reason = "a home directory path"
    elif any(part in (".", "..") for part in parts):
        reason = "a '.' or '..' part leaves or re-enters a directory"
    elif any(part == "" for part in parts):
        reason = "an empty part between slashes"
    elif STUDY_NAME.fullmatch(name) is None:
        reason = "characters other than letters, digits, '.', '_', '-' and '/'"
    elif any(len(part) > STUDY_PART_MAX for part in parts):
        reason = f"a part longer than {STUDY_PART_MAX} characters"
    else:
        return
    raise ConfigError(
        f"study={name} is not allowed ({reason}): a study is a plain name, or a relative path of plain parts "
        "(letters, digits, '.', '_', '-', joined by '/') under outputs/studies; e.g. study=warmup-vs-adam or "
        "study=adam/warmup"
    )


def study_dir_name(name: str, stamp: str, smoke: bool = False) -> str:
    """The ``hydra.sweep.dir`` below ``outputs/studies``: the study's name, or the start time for unnamed ones;
    ``smoke/...`` for smoke runs, which never mix with a real study's records.

    Raises ConfigError on a study name that would leave ``outputs/studies`` (a safety net: the command line
    checks the name before Hydra runs).
    """
    check_study_name(str(name))
    return f"smoke/{name or stamp}" if smoke else name or stamp


def run_label(overrides: list[str], factors: list[str] | None, job_num: int | None) -> str:
    """A short, readable name of a run: its job number and the values of the study's factors (``#2 warmup=500``).

    Outside a study (``factors`` None) every override is shown.
    """
    if factors is not None:
        overrides = [o for o in overrides if o.partition("=")[0].lstrip("+~") in factors]
    text = " ".join(overrides) if overrides else "defaults"
    return f"#{job_num} {text}" if job_num is not None else text


def list_studies(root: Path = STUDIES_ROOT, limit: int = 10) -> str:
    """The studies under ``root`` (directories with a ``study.json``, up to 3 levels down), for an error message;
    ``no study under <root>`` when there is none."""
    found = sorted(
        {p.parent.relative_to(root).as_posix() for depth in (1, 2, 3) for p in root.glob("*/" * depth + STUDY_FILE)}
    )
    if not found:
        found = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    if not found:
        return f"no study under {root}"
    more = f" ... ({len(found)} in all)" if len(found) > limit else ""
    return f"studies under {root}: {', '.join(found[:limit])}{more}"
