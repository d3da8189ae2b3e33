"""Log a study's analysis (figures, tables, the report) to one W&B run of ``job_type=analysis`` in its group.

The run sits in the same project and group as the study's training runs, so the dashboard of the study shows
the analysis beside them. Its W&B id is derived from the study directory: analysing the study again updates
the same analysis run instead of adding one. Offline unless ``WANDB_MODE`` or ``mode`` says otherwise; the
files go under ``<out_dir>/wandb`` and ``python -m ablate.sync <study dir>`` uploads them with the runs when
``out_dir`` is inside the study. Failing to reach W&B warns once and returns None: analysis never depends on it.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path
from typing import Any

import yaml

from ablate.record.wandb.naming import study_group

STUDY_FILE = "study.json"


def study_tracker(study_dir: Path) -> dict[str, Any]:
    """The ``tracker`` section of the first run config in the study (``{}`` when there is none)."""
    for path in sorted(study_dir.rglob("config.yaml")):
        if "superseded" in path.parts or ".hydra" in path.parts:
            continue
        try:
            tracker = (yaml.safe_load(path.read_text()) or {}).get("tracker") or {}
        except (OSError, yaml.YAMLError):
            continue
        if tracker:
            return dict(tracker)
    return {}


def study_uses_wandb(study_dir: Path) -> bool:
    return study_tracker(study_dir).get("name") == "wandb"


def study_project(study_dir: Path, default: str = "ablate") -> str:
    """The W&B project of the study's runs (``tracker.project`` in a run's ``config.yaml``)."""
    return str(study_tracker(study_dir).get("project") or default)


def analysis_run_id(study_dir: Path) -> str:
    """A stable W&B id per study directory: ``analysis-<12 hex of sha256(resolved path)>``."""
    return "analysis-" + hashlib.sha256(str(study_dir.resolve()).encode()).hexdigest()[:12]


def log_analysis(
    study_dir: Path,
    out_dir: Path,
    figures: dict[str, Path],
    tables: dict[str, Any],
    report_html: Path | None = None,
    project: str | None = None,
    mode: str | None = None,
) -> Path | None:
    """Log ``figures`` (name -> PNG/SVG path) and ``tables`` (name -> pandas DataFrame) to the study's analysis run.

    Returns the W&B run directory it wrote (offline: the one ``wandb sync`` uploads), or None if W&B failed.
    """
    import json

    stamp_path = study_dir / STUDY_FILE
    study = json.loads(stamp_path.read_text()) if stamp_path.exists() else {"sweep_dir": str(study_dir.resolve())}
    for key, value in (("WANDB_MODE", "offline"), ("WANDB_ERROR_REPORTING", "false"), ("WANDB_SILENT", "true")):
        os.environ.setdefault(key, value)
    mode = mode or os.environ["WANDB_MODE"]
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        import wandb

        run = wandb.init(
            project=project or study_project(study_dir),
            group=study_group(study),
            job_type="analysis",
            name="analysis",
            id=analysis_run_id(study_dir),
            resume="allow",
            config={"study_dir": str(study_dir.resolve()), "factors": study.get("factors") or []},
            dir=str(out_dir),
            mode=mode,  # type: ignore[arg-type]
            settings=wandb.Settings(console="off", x_save_requirements=False, disable_git=True),
        )
        row: dict[str, Any] = {name: wandb.Image(str(path)) for name, path in figures.items()}
        row.update({name: wandb.Table(dataframe=frame) for name, frame in tables.items()})
        if report_html is not None:
            row["report"] = wandb.Html(report_html.read_text(encoding="utf-8"), inject=False)
        run.log(row)
        run_dir = Path(run.dir).parent
        run.finish()
        return run_dir
    except Exception as err:  # the analysis on disk is complete whatever W&B does
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        print(f"warning: logging the analysis to W&B failed, the report on disk is complete: {first}", file=sys.stderr)
        return None
