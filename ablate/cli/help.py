"""``python -m ablate --help``: usage, the config groups with their options, and every key with its help and
resolved default."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

from ablate.cli.overrides import TOP_KEYS, default_options, group_options, load_yaml
from ablate.config import CONF_DIR, GROUPS, Config, help_of


def help_text() -> str:
    """``python -m ablate --help``: usage, config groups with their options, and every key with its help."""

    def values(path: Path, key: str) -> str:
        option = load_yaml(path)
        generated = CONF_DIR / "generated" / key / path.name  # e.g. tuned_lr: the option's defaults list reads it
        text = str(load_yaml(generated).get(key, "?") if generated.is_file() else option.get(key, "?"))
        if text.startswith("${.") and text.endswith("}"):  # `${.default_lr}`: show the value it refers to
            return str(option.get(text[3:-1], text))
        return text

    def describe(schema: type, group: str, options: list[str]) -> list[str]:
        out = []
        for f in fields(schema):
            if f.name == "name":
                continue
            shown = ", ".join(
                f"{o}: {values(CONF_DIR / group / f'{o}.yaml', f.name)}"
                if len(options) > 1
                else values(CONF_DIR / group / f"{o}.yaml", f.name)
                for o in options
            )
            out.append(f"  {group + '.' + f.name:<30} {f.metadata.get('help', '')} [{shown}]")
        return out

    defaults = default_options()
    lines = [
        "ablate: learning-rate warmup ablation studies.",
        "",
        "usage:",
        "  python -m ablate [key=value ...]                 one run",
        "  python -m ablate -m key=v1,v2 [key=v1,v2 ...]     a study: every combination, one run each",
        "  python -m ablate --cfg job [key=value ...]       print the composed config and exit",
        "",
        "study flags:",
        "  --fresh    run every grid point again (earlier records are set aside in superseded/, never deleted)",
        "  --smoke    every run for 3 updates into outputs/studies/smoke/...: does the study run at all?",
        "  --yes      start a grid of more than 1000 runs without asking",
        "",
        "named studies, status, analysis:",
        "  python -m ablate -m +sweep=<name>                a study from sweeps/<name>.yaml (resumes when run again)",
        "  python -m ablate.status <study name or dir>      each grid point's state, while it runs or after",
        "  python -m analysis <study name or dir>           the report: figures, tables with intervals, findings",
        "",
        "examples:",
        "  python -m ablate -m warmup=0,100,500",
        "  python -m ablate -m optimizer=sgd,adam warmup=0,100 seed=0,1,2 schedule=cosine",
        "",
        "config groups (group=option; default marked *):",
    ]
    for group in GROUPS:
        options = [o + ("*" if o == defaults.get(group) else "") for o in group_options(group)]
        lines.append(f"  {group:<30} {', '.join(options)}")
    lines += ["", "top-level keys [default, from conf/config.yaml]:"]
    top = help_of(Config)
    primary = load_yaml(CONF_DIR / "config.yaml")
    shown = {k: primary[k] for k in TOP_KEYS}
    optimizer = defaults.get("optimizer", "")
    default_lr = load_yaml(CONF_DIR / "optimizer" / f"{optimizer}.yaml").get("default_lr")
    if isinstance(default_lr, int | float) and isinstance(primary.get("lr_scale"), int | float):
        shown["lr"] = f"{float(default_lr) * float(primary['lr_scale']):g} with optimizer={optimizer}"
    lines += [f"  {k:<30} {top[k]} [{shown[k]}]" for k in TOP_KEYS]
    lines += ["", "group keys, group.key=value [default per option, from conf/<group>/<option>.yaml]:"]
    seen: set[type] = set()
    for group, schemas in GROUPS.items():
        for schema in schemas.values():
            if schema in seen:
                continue
            seen.add(schema)
            same = [o for o, s in schemas.items() if s is schema]
            lines.append(f" {group}={', '.join(same)}:")
            lines += describe(schema, group, same)
    lines += [
        "",
        "Runs write their record (config.yaml, metrics.jsonl, result.json) to outputs/runs/<time>/; a study",
        "writes one directory per run and summary.csv to outputs/studies/<date>/<time>/.",
        "Hydra's own flags: python -m ablate --hydra-help",
    ]
    return "\n".join(lines)
