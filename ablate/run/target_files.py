"""The user's own config files, the Hydra way: a group file with ``_target_`` and the target's arguments (no
schema), turned into that group's custom schema (``model``, ``data``, ``optimizer``, ``schedule``)."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from ablate.checks import check
from ablate.run.data.config import CustomDataConfig
from ablate.run.imports import split_target
from ablate.run.models.config import CustomModelConfig
from ablate.run.optim.config import CustomOptimizerConfig
from ablate.run.schedules import CustomScheduleConfig

USER_GROUPS: dict[str, type] = {
    "model": CustomModelConfig,
    "data": CustomDataConfig,
    "optimizer": CustomOptimizerConfig,
    "schedule": CustomScheduleConfig,
}
"""The groups that take the user's code by import path, and the schema a ``_target_`` config file becomes."""
USER_SCHEMAS = tuple(USER_GROUPS.values())


def from_target_file(group: str, schema: type, node: dict[str, Any]) -> Any:
    """A group config file without a schema (``_target_: mypkg.nets.MyNet`` plus arguments) as the group's custom
    schema: ``_target_`` is the target, the schema's own keys (``name``, ``task``, ``default_lr`` ...) are taken
    as such, and every other key is an argument of the target."""
    node = dict(node)
    check(
        "_target_" in node,
        f"{group}: its config ({', '.join(sorted(node)) or 'empty'}) has no _target_ and no schema; give "
        f"_target_: <module.name> and the arguments, or extend an option's schema",
    )
    target = node.pop("_target_")
    own = {f.name for f in fields(schema)} - {"name", "target", "args"}
    kwargs = {key: node.pop(key) for key in list(node) if key in own}
    name = str(node.pop("name", "") or split_target(str(target))[1])
    if schema is CustomOptimizerConfig:
        check(
            "default_lr" in kwargs,
            f"optimizer: the config of {target} needs default_lr: <peak rate> (the rate used when lr is not given)",
        )
        kwargs.setdefault("tuned_lr", kwargs["default_lr"])
    if schema is CustomDataConfig:
        kwargs.setdefault("task", "auto")
    return schema(name=name, target=target, args=node, **kwargs)
