"""Schemas of the ``tracker`` config group: where a run's events go besides its run record, which is always
written. Tracker settings are not part of a run's identity (``run_id``)."""

from __future__ import annotations

from dataclasses import dataclass

from ablate.checks import check, described, is_finite

PROGRESS_MODES = ("auto", "bar", "line", "off")
WANDB_FORBIDDEN = "/\\#?%:"  # characters W&B does not take in a project or entity name
WANDB_NAME_MAX = 128
_PROGRESS = "console output: auto (a bar on a terminal, a line per run otherwise), bar, line, off"


def _check_progress(progress: str) -> None:
    check(
        progress in PROGRESS_MODES,
        f"tracker.progress={progress} is not allowed: choose one of {', '.join(PROGRESS_MODES)}",
    )


@dataclass
class LocalTrackerConfig:
    name: str = described("tracker preset")
    progress: str = described(_PROGRESS)

    def check(self) -> None:
        _check_progress(self.progress)


@dataclass
class WandbTrackerConfig:
    name: str = described("tracker preset")
    progress: str = described(_PROGRESS)
    project: str = described("W&B project")
    entity: str = described("W&B entity (team or user); empty: your default")
    mode: str = described("offline (default; sync later with python -m ablate.sync), online or disabled")
    log_every: int = described(
        "one W&B point per this many updates: the mean over the window (plus every eval/probe line); the record "
        "keeps every step"
    )
    flush_every_s: float = described("send buffered rows to W&B at most this often (and at the end of the run)")
    init_timeout_s: float = described("give up starting W&B after this many seconds and continue without it")
    save_requirements: bool = described("upload the environment's package list with each run (~70 ms per run here)")
    system_metrics: bool = described("sample CPU/GPU/memory use in the background during each run")

    def check(self) -> None:
        check(
            self.project != "" and len(self.project) <= WANDB_NAME_MAX and not set(self.project) & set(WANDB_FORBIDDEN),
            f"tracker.project={self.project} is not allowed: a W&B project is 1 to {WANDB_NAME_MAX} characters "
            f"without any of {' '.join(WANDB_FORBIDDEN)}; e.g. tracker.project=ablate",
        )
        check(
            len(self.entity) <= WANDB_NAME_MAX and not set(self.entity) & set(WANDB_FORBIDDEN + " "),
            f"tracker.entity={self.entity} is not allowed: a W&B team or user name has no spaces and none of "
            f"{' '.join(WANDB_FORBIDDEN)}; e.g. tracker.entity=my-team, or empty for your default",
        )
        check(
            self.mode in ("offline", "online", "disabled"),
            f"tracker.mode={self.mode} is not allowed: choose offline, online or disabled",
        )
        check(
            self.log_every >= 1,
            f"tracker.log_every={self.log_every} is not allowed: it must be >= 1, e.g. tracker.log_every=50",
        )
        check(
            is_finite(self.init_timeout_s) and self.init_timeout_s > 0,
            f"tracker.init_timeout_s={self.init_timeout_s} is not allowed: it must be a finite number of seconds > "
            "0, e.g. tracker.init_timeout_s=30",
        )
        check(
            is_finite(self.flush_every_s) and self.flush_every_s >= 0,
            f"tracker.flush_every_s={self.flush_every_s} is not allowed: it must be a finite number of seconds >= 0 "
            "(0: send every row), e.g. tracker.flush_every_s=30",
        )
        _check_progress(self.progress)


TRACKERS: dict[str, type] = {"local": LocalTrackerConfig, "wandb": WandbTrackerConfig}
"""Option of the ``tracker`` group -> its schema."""
