"""The user's data: ``.npz`` arrays from disk, or whatever a data factory returns, checked and made a ``Dataset``.

``.npz`` (``data=npz data.path=<file>``): arrays ``x`` and ``y`` and, optionally, ``group``. Held-out data is
``eval_x``/``eval_y``/``eval_group`` when the file has them, else a seeded random ``data.eval_fraction`` of the
examples. The task kind is ``data.task``, or ``auto``: integer ``y`` is classification, float ``y`` regression.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ablate.checks import ConfigError
from ablate.run.data.dataset import Dataset
from ablate.run.objective import CLASSIFICATION, IGNORE, REGRESSION, TASKS

NPZ_KEYS = ("x", "y", "group", "eval_x", "eval_y", "eval_group")


def load_npz(path: str, task: str, eval_fraction: float, seed: int) -> Dataset:
    """The dataset in the ``.npz`` file at ``path`` (see the module docstring)."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise ConfigError(
            f"data.path={path} is not a file (looked in {file.resolve().parent}): give the path of an .npz file "
            "with arrays x and y (numpy.savez)"
        )
    try:
        with np.load(file, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile) as err:
        raise ConfigError(f"data.path={path} is not a readable .npz file: {err}; write it with numpy.savez") from None
    unknown = sorted(set(arrays) - set(NPZ_KEYS))
    missing = [key for key in ("x", "y") if key not in arrays]
    if missing or unknown:
        raise ConfigError(
            f"data.path={path} has arrays {sorted(arrays)}: it needs x and y"
            + (f" (missing: {', '.join(missing)})" if missing else "")
            + (f", and knows only {', '.join(NPZ_KEYS)} (unknown: {', '.join(unknown)})" if unknown else "")
        )
    if ("eval_x" in arrays) != ("eval_y" in arrays):
        raise ConfigError(f"data.path={path}: give eval_x and eval_y together, or neither (then a split is drawn)")
    x, y = arrays["x"], arrays["y"]
    group = arrays.get("group", np.zeros(len(x), dtype=np.int64))
    _same_length(path, {"x": x, "y": y, "group": group})
    if "eval_x" in arrays:
        eval_x, eval_y = arrays["eval_x"], arrays["eval_y"]
        eval_group = arrays.get("eval_group", np.zeros(len(eval_x), dtype=np.int64))
        _same_length(path, {"eval_x": eval_x, "eval_y": eval_y, "eval_group": eval_group})
    else:
        order = np.random.default_rng(seed).permutation(len(x))
        n_eval = round(len(x) * eval_fraction)
        if not 1 <= n_eval < len(x):
            raise ConfigError(
                f"data.eval_fraction={eval_fraction} leaves no example on one side of the split of the {len(x)} "
                f"examples in {path}; choose a fraction in (0, 1) or give eval_x and eval_y in the file"
            )
        held, kept = order[:n_eval], order[n_eval:]
        x, y, group, eval_x, eval_y, eval_group = x[kept], y[kept], group[kept], x[held], y[held], group[held]
    t = [torch.from_numpy(np.ascontiguousarray(a)) for a in (x, y, group, eval_x, eval_y, eval_group)]
    return make_dataset(f"npz:{file.name}", t[0], t[1], t[2], t[3], t[4], t[5], task=task, source=f"data.path={path}")


def _same_length(path: str, arrays: dict[str, np.ndarray]) -> None:
    lengths = {key: len(a) if a.ndim else 0 for key, a in arrays.items()}
    if len(set(lengths.values())) > 1:
        shown = ", ".join(f"{key} {n}" for key, n in lengths.items())
        raise ConfigError(f"data.path={path}: arrays of one split must have the same length, got {shown}")


def from_factory(key: str, result: Any, task: str) -> Dataset:
    """A data factory's result as a checked ``Dataset``: a ``Dataset``, or ``(train, held_out)`` torch datasets."""
    if isinstance(result, Dataset):
        tensors = (result.train_x, result.train_y, result.train_group, result.eval_x, result.eval_y, result.eval_group)
        return make_dataset(result.name, *tensors, task=result.task, source=key, n_classes=result.n_classes)
    if isinstance(result, tuple | list) and len(result) == 2 and all(_is_map_dataset(d) for d in result):
        train, held_out = (_read(key, part, d) for part, d in zip(("train", "held-out"), result, strict=True))
        return make_dataset(key.rsplit(".", 1)[-1], *train, *held_out, task=task, source=key)
    raise ConfigError(
        f"{key} returned {type(result).__name__}: return an ablate Dataset (ablate.run.workload.Dataset) or a pair "
        "(train, held_out) of torch.utils.data.Dataset with items (x, y) or (x, y, group)"
    )


def _is_map_dataset(d: Any) -> bool:
    return hasattr(d, "__getitem__") and hasattr(d, "__len__")


def _read(key: str, part: str, d: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A map-style dataset's items stacked into tensors ``x``, ``y`` and ``group`` (0 when items have none)."""
    xs, ys, gs = [], [], []
    for i in range(len(d)):
        item = d[i]
        if not isinstance(item, tuple | list) or len(item) not in (2, 3):
            raise ConfigError(f"{key}: item {i} of the {part} dataset is not (x, y) or (x, y, group)")
        xs.append(torch.as_tensor(item[0]))
        ys.append(torch.as_tensor(item[1]))
        gs.append(torch.as_tensor(item[2] if len(item) == 3 else 0))
    if not xs:
        raise ConfigError(f"{key}: the {part} dataset is empty")
    return torch.stack(xs), torch.stack(ys), torch.stack(gs)


def make_dataset(
    name: str,
    train_x: torch.Tensor,
    train_y: torch.Tensor,
    train_group: torch.Tensor,
    eval_x: torch.Tensor,
    eval_y: torch.Tensor,
    eval_group: torch.Tensor,
    task: str,
    source: str,
    n_classes: int | None = None,
) -> Dataset:
    """Check user tensors and build a ``Dataset``: lengths, finite values, labels in range, groups from 0.

    ``task=auto``: integer targets are classification, floating-point targets regression. Float features
    become float32, targets int64 (classification) or float32 (regression), groups int64.
    """
    for split, (x, y, g) in {
        "train": (train_x, train_y, train_group),
        "held-out": (eval_x, eval_y, eval_group),
    }.items():
        if len(x) == 0:
            raise ConfigError(f"{source}: the {split} split has no examples")
        if not (len(x) == len(y) == len(g)):
            raise ConfigError(
                f"{source}: the {split} split's x, y and group have different lengths ({len(x)}, {len(y)}, {len(g)})"
            )
        if torch.is_floating_point(x) and not torch.isfinite(x).all():
            raise ConfigError(f"{source}: the {split} inputs x hold NaN or inf values; clean or drop those examples")
        if torch.is_floating_point(g) or (g < 0).any():
            raise ConfigError(f"{source}: the {split} groups must be integers >= 0 (group ids 0 .. G-1)")
    if task == "auto":
        task = REGRESSION if torch.is_floating_point(train_y) else CLASSIFICATION
    if task not in TASKS:
        raise ConfigError(f"data.task={task} is not allowed: choose auto, {', '.join(TASKS)}")
    if task == REGRESSION:
        train_y, eval_y = train_y.float(), eval_y.float()
        for split, y in (("train", train_y), ("held-out", eval_y)):
            if not torch.isfinite(y).all():
                raise ConfigError(f"{source}: the {split} targets y hold NaN or inf values; regression needs numbers")
        n_classes = 1
    else:
        if torch.is_floating_point(train_y) and not torch.equal(train_y, train_y.round()):
            raise ConfigError(f"{source}: classification targets y must be class indices 0 .. K-1, got fractions")
        train_y, eval_y = train_y.long(), eval_y.long()
        scored = torch.cat([train_y[train_y != IGNORE].flatten(), eval_y[eval_y != IGNORE].flatten()])
        top = int(scored.max()) + 1 if len(scored) else 1
        n_classes = n_classes or max(top, 2)
        if len(scored) and (int(scored.min()) < 0 or top > n_classes):
            raise ConfigError(
                f"{source}: class labels must lie in 0 .. {n_classes - 1} (or -100: not scored), found "
                f"{int(scored.min())} .. {top - 1}"
            )
    if torch.is_floating_point(train_x):
        train_x, eval_x = train_x.float(), eval_x.float()
    return Dataset(
        name, train_x, train_y, train_group.long(), eval_x, eval_y, eval_group.long(), n_classes=n_classes, task=task
    )
