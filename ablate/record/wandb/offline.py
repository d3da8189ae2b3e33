"""W&B unreachable: a study's runs fall back to offline logging together.

**W&B unreachable.** With ``tracker.mode=online``, a run whose ``wandb.init`` fails (no answer within
``tracker.init_timeout_s``, a refused connection, no API key) logs to W&B *offline* at once (a fresh attempt
id: wandb's service still holds the failed one) and says so in one warning line with the command that uploads
it later (``python -m ablate.sync``). In a study it also records the failure (when, why) under the command's
``multirun_id`` in ``<sweep dir>/wandb_offline.json``, written atomically: every later run of the same command
then starts offline without touching the network (silently in a process that already warned, one short note
line otherwise, e.g. in another launcher worker). A new command on the same study (a new ``multirun_id``:
resuming or re-running it) tries online again, and adds its own entry if W&B is still unreachable; commands
working on one study at once keep their own entries. Single runs (no study) fall back offline the same way,
each on its own. The failed online attempt leaves an all-but-empty ``wandb/run-*`` folder, which sync ignores.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ablate.record.files import atomic_write_json

OFFLINE_MARKER = "wandb_offline.json"  # in a study directory: W&B was unreachable during this command
told_offline: set[tuple[str, str]] = set()  # (sweep dir, multirun_id) this process already warned about


def offline_marker(study: dict[str, Any]) -> Path | None:
    """Where a study records that W&B was unreachable: ``<sweep dir>/wandb_offline.json``.

    None for a single run (no study) or a study without a ``multirun_id`` (its commands cannot be told apart).
    """
    sweep_dir = study.get("sweep_dir")
    return Path(sweep_dir) / OFFLINE_MARKER if sweep_dir and study.get("multirun_id") else None


def read_marker(path: Path) -> dict[str, Any]:
    try:
        marker = json.loads(path.read_text())
    except (OSError, ValueError):  # none yet, or unreadable: as if none
        return {}
    return marker if isinstance(marker, dict) and isinstance(marker.get("commands"), dict) else {}


def study_offline(study: dict[str, Any]) -> dict[str, Any] | None:
    """``{"since": ..., "reason": ...}`` if W&B was found unreachable earlier in this command, else None.

    The marker holds one entry per command (``multirun_id``), so commands working on one study at once do not
    undo each other's; an entry of an earlier command is ignored: each command tries online once more.
    """
    path = offline_marker(study)
    if path is None:
        return None
    entry = read_marker(path).get("commands", {}).get(study["multirun_id"])
    return entry if isinstance(entry, dict) else None


def mark_study_offline(study: dict[str, Any], reason: str) -> None:
    """Tell the study's later runs of this command (in this process or another) to start offline at once."""
    path = offline_marker(study)
    if path is None:
        return
    marker = read_marker(path) or {
        "note": "W&B was unreachable: each command's later runs logged offline; upload with python -m ablate.sync",
        "commands": {},
    }
    since = datetime.now(timezone.utc).isoformat(timespec="seconds")
    marker["commands"][study["multirun_id"]] = {"since": since, "reason": reason}
    try:
        atomic_write_json(path, marker)
    except OSError:  # cannot write there: each run then finds out for itself
        pass


def sync_hint(study: dict[str, Any], run_dir: Path) -> str:
    return f"python -m ablate.sync {study.get('sweep_dir') or run_dir}"
