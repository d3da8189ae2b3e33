"""The composition root: the top-level schema ``Config``, every config group's options, and validation.

The YAML files under ``conf/`` hold the values; the dataclasses hold the types and a help string per field.
Each group's schema lives next to the code that builds it (``ablate.run.models.config``,
``ablate.run.data.config``, ``ablate.run.optim.config``, ``ablate.run.schedules``,
``ablate.run.probes.config``, ``ablate.record.config``); this module gathers them in ``GROUPS`` and
registers them in Hydra's ConfigStore. Each YAML option extends its schema
(``defaults: [/schema/<group>/<option>@_here_, _self_]``), so Hydra rejects a typo'd key or a wrongly typed
value while composing.

``to_typed`` turns a composed ``DictConfig`` into plain dataclass objects once, at the entry, and
``validate`` checks every field and the rules across groups; both raise ``ConfigError`` with a one-line
message that names the bad value, what is allowed and how to fix it. Below the entry nothing reads a
``DictConfig``. ``run_id`` is a run's identity. Torch-free: the command line and the sweeper import it.

Over 300 lines because the top-level schema (30 documented fields), its checks and the rules across groups belong
together.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Optional

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import MissingMandatoryValue, OmegaConfBaseException

from ablate.checks import ConfigError, check, described, is_finite, is_int
from ablate.record.config import TRACKERS
from ablate.run.data.config import (
    DATASETS,
    LOADED,
    SKEWS,
    ClustersConfig,
    DigitsConfig,
    SortConfig,
    TeacherConfig,
    n_groups,
    train_size,
)
from ablate.run.models.config import MODELS, CNNConfig, CustomModelConfig, MLPConfig, TransformerConfig
from ablate.run.optim.config import OPTIMIZERS
from ablate.run.probes.config import PROBES
from ablate.run.schedules import SCHEDULES, WARMUP_SHAPES, is_import_path, resolve_warmup_steps
from ablate.run.target_files import USER_GROUPS, USER_SCHEMAS, from_target_file
from ablate.study.names import check_study_name, study_dir_name

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"  # the config groups
SWEEPS_DIR = CONF_DIR.parent / "sweeps"  # named studies, one YAML file each
SMOKE_UPDATES = 3  # updates per run with smoke=true (--smoke)
DEVICE = re.compile(r"auto|cpu|cuda(:[0-9]+)?")
_NOT_IDENTITY = ("tracker", "study")  # keys that do not change what a run computes: not part of its run_id


@dataclass
class Config:
    model: Any = described("model config group")
    data: Any = described("dataset config group")
    optimizer: Any = described("optimizer config group")
    schedule: Any = described("base schedule after warmup (config group)")
    tracker: Any = described("where run events go (config group)")
    skew: Any = described("order of the first batches (config group)")
    probes: Any = described("mechanism measurements, each with its own interval (config group)")
    warmup: Any = described("warmup length W in optimizer steps (int >= 0), or 'auto' = ceil(2/(1-beta2))")
    warmup_shape: str = described(
        "linear, constant, exponential, none (no warmup whatever W), flat (no ramp, same budget)"
    )
    warmup_start_fraction: float = described(
        "constant: the rate during warmup; exponential: the start, as fraction of lr"
    )
    lr: float = described("peak learning rate p (default: the optimizer's default_lr x lr_scale)")
    lr_scale: float = described("multiplies the optimizer's default rate when lr is not given (studies: its tuned_lr)")
    lr_sharpness_multiple: Optional[float] = described(  # noqa: UP045
        "null: the peak rate is lr; c > 0: the peak rate is c x 2/sharpness, the sharpness (top Hessian eigenvalue "
        "of the training loss on the sharpness batch) measured at init; lr is then ignored",
        None,
    )
    loss: str = described(
        "auto: the data's task kind's loss (cross-entropy, or mean squared error); or the import path of a "
        "per-example loss fn(output, y) -> [n] (docs/workloads.md)"
    )
    steps: int = described("total optimizer steps T, warmup included")
    batch_size: Any = described("examples per training batch (int >= 1), or full: the whole training set every step")
    seed: int = described("seed of model init and batch order")
    eval_every: int = described("evaluate on the held-out split every this many steps (and at the end)")
    metrics_every: int = described(
        "measure train/acc, opt/grad_norm and opt/update_ratio every this many steps (1: every step)"
    )
    diverge_factor: float = described("diverged when the train loss stays above this multiple of its first value ...")
    diverge_window: int = described("... for this many consecutive updates (a spike that recovers sooner is not)")
    untrained_margin: float = described(
        "outcome: trained when final held-out loss <= (1 - m) x chance loss, or acc >= chance acc + m (1 - chance acc)"
    )
    device: str = described("auto (CUDA when present), cpu, cuda or cuda:<index>")
    cpu_threads: int = described(
        "torch threads of the run (torch.set_num_threads), set by every launcher; part of the run's identity, "
        "since CPU results differ in the last bits between thread counts"
    )
    fail_at_step: int = described("raise an error at this step, to test failure handling (-1: never)")
    study: str = described(
        "study name: a plain name or a relative path of plain parts (letters, digits, . _ -, joined by /); a "
        "multirun goes to outputs/studies/<study> and re-running it resumes"
    )
    smoke: bool = described(
        "3 updates per run, into outputs/studies/smoke/...: checks that a study runs, measures nothing"
    )


GROUPS: dict[str, dict[str, type]] = {
    "model": MODELS,
    "data": DATASETS,
    "optimizer": OPTIMIZERS,
    "schedule": SCHEDULES,
    "tracker": TRACKERS,
    "skew": SKEWS,
    "probes": PROBES,
}
"""Every option of every config group and its schema; ``conf/<group>/<option>.yaml`` must match."""


def multiply(a: float, b: float) -> float:
    """``${ablate_mul:a,b}`` = a * b (OmegaConf has no arithmetic): ``lr = default_lr x lr_scale``."""
    return float(a) * float(b)


OmegaConf.register_new_resolver("ablate_mul", multiply, replace=True)
# conf/config.yaml: hydra.sweep.dir = outputs/studies/${ablate_study_dir:${study},'<date>/<time>',${smoke}}
OmegaConf.register_new_resolver("ablate_study_dir", study_dir_name, use_cache=True, replace=True)


def register_configs() -> None:
    """Register the schemas and the named studies in Hydra's ConfigStore (idempotent).

    ablate's Hydra plugins (``hydra_plugins/``) register their own configs when Hydra imports them; Hydra's
    plugin scan is started here too, so that composing in-process (tests, single-run checks) finds them.
    """
    from hydra.core.config_store import ConfigStore
    from hydra.core.plugins import Plugins

    Plugins.instance()  # imports every module under hydra_plugins/, which store their configs

    cs = ConfigStore.instance()
    cs.store(name="schema", node=Config)
    for group, options in GROUPS.items():
        for option, schema in options.items():
            cs.store(group=f"schema/{group}", name=option, node=schema)
    for path in sorted(SWEEPS_DIR.glob("*.yaml")):  # named studies: python -m ablate -m +sweep=<name>
        cs.store(group="sweep", name=path.stem, node=OmegaConf.load(path), package="_global_")


def help_of(schema: type) -> dict[str, str]:
    """Field name -> help string of a schema dataclass."""
    return {f.name: f.metadata.get("help", "") for f in fields(schema)}


def to_typed(cfg: DictConfig) -> Config:
    """Resolve a composed config into dataclass objects and validate it; raises ConfigError."""
    try:
        config = OmegaConf.to_object(cfg)
    except MissingMandatoryValue as err:
        key = err.full_key or "a key"
        raise ConfigError(
            f"{key} is not set: it has no default; give it on the command line, e.g. {key}=<value> "
            "(docs/workloads.md for the user's parts)"
        ) from None
    except OmegaConfBaseException as err:
        first_line = str(err).strip().splitlines()[0]
        if "default_lr" in first_line:
            raise ConfigError(
                "optimizer: your optimizer's config file needs default_lr: <peak rate> (the rate used when lr is not "
                f"given); {first_line}"
            ) from None
        raise ConfigError(f"invalid config: {first_line}") from None
    assert isinstance(config, Config)
    for group, schema in USER_GROUPS.items():
        node = getattr(config, group)
        if isinstance(node, dict):  # a config file of the user's, the Hydra way: _target_ and its arguments
            setattr(config, group, from_target_file(group, schema, node))
    validate(config)
    return config


def validate(c: Config) -> None:
    """Range and cross-field checks of every field, each failing with a one-line message: the value, what is
    allowed, and a fix.

    Cheap (no I/O, no torch): the sweeper runs it for every grid point. Whether a CUDA device exists is a
    property of the machine, not of the config: ``ablate.cli.compose.check_device`` checks it where the run starts.
    Each group's own fields are checked by its schema's ``check()``, the rest here. tests/test_bad_input.py
    holds a bad value for every field and fails when a field has no check.
    """
    _validate_names(c)
    for group in GROUPS:  # before the top-level keys: lr and warmup=auto are computed from the optimizer's values
        getattr(c, group).check()
    check(
        is_int(c.steps) and c.steps >= 1,
        f"steps={c.steps} is not allowed: total steps must be an integer >= 1; set e.g. steps=1000",
    )
    check_study_name(c.study)
    check(
        c.warmup == "auto" or (is_int(c.warmup) and c.warmup >= 0),
        f"warmup={c.warmup} is not allowed: it must be an integer number of steps >= 0, or auto; e.g. warmup=100",
    )
    warmup_steps = resolve_warmup_steps(c)
    check(
        warmup_steps < c.steps,
        f"warmup={c.warmup}{f' ({warmup_steps} steps)' if c.warmup == 'auto' else ''} is not allowed with "
        f"steps={c.steps}: warmup counts inside "
        f"the total, so it must be < steps; lower warmup or raise steps above {warmup_steps}",
    )
    check(
        c.loss == "auto" or is_import_path(c.loss),
        f"loss={c.loss} is not allowed: auto (the task kind's loss), or the import path of a per-example loss "
        "fn(output, y) -> [n], e.g. loss=mypkg.losses:focal",
    )
    check(
        c.warmup_shape in WARMUP_SHAPES or is_import_path(c.warmup_shape),
        f"warmup_shape={c.warmup_shape} is not allowed: choose one of {', '.join(WARMUP_SHAPES)}, or give the import "
        "path of a function factor(t, W), e.g. warmup_shape=mypkg.schedules:quadratic",
    )
    check(
        0.0 < c.warmup_start_fraction <= 1.0,
        f"warmup_start_fraction={c.warmup_start_fraction} is not allowed: it must be in (0, 1]; e.g. 0.1",
    )
    check(
        is_finite(c.lr_scale) and c.lr_scale > 0,
        f"lr_scale={c.lr_scale} is not allowed: it must be a finite number > 0 (it multiplies the optimizer's "
        "default rate); e.g. lr_scale=1.0",
    )
    check(
        math.isfinite(c.lr) and c.lr > 0,
        f"lr={c.lr} is not allowed: the peak learning rate must be a finite number > 0; e.g. lr=1e-3",
    )
    check(
        c.batch_size == "full" or (is_int(c.batch_size) and c.batch_size >= 1),
        f"batch_size={c.batch_size} is not allowed: it must be an integer >= 1 or full; e.g. batch_size=64",
    )
    check(c.seed >= 0, f"seed={c.seed} is not allowed: it must be an integer >= 0; e.g. seed=0")
    check(
        is_int(c.diverge_window) and c.diverge_window >= 1,
        f"diverge_window={c.diverge_window} is not allowed: it must be an integer >= 1 (1: stop at the first spike)"
        "; e.g. diverge_window=50",
    )
    check(
        0.0 <= c.untrained_margin < 1.0,
        f"untrained_margin={c.untrained_margin} is not allowed: it must be in [0, 1), e.g. 0.1",
    )
    check(
        c.lr_sharpness_multiple is None or (math.isfinite(c.lr_sharpness_multiple) and c.lr_sharpness_multiple > 0),
        f"lr_sharpness_multiple={c.lr_sharpness_multiple} is not allowed: it must be a number > 0 (e.g. 1.5 = 1.5 x "
        "the stability limit 2/sharpness) or null",
    )
    check(
        c.eval_every >= 1,
        f"eval_every={c.eval_every} is not allowed: it must be an integer >= 1 (steps between evaluations); "
        "e.g. eval_every=50",
    )
    check(
        c.metrics_every >= 1,
        f"metrics_every={c.metrics_every} is not allowed: it must be an integer >= 1 (1 measures every step); "
        "e.g. metrics_every=25",
    )
    check(
        c.diverge_factor > 1,
        f"diverge_factor={c.diverge_factor} is not allowed: it must be > 1 (use inf to stop only on NaN/inf); "
        "e.g. diverge_factor=10",
    )
    check(
        DEVICE.fullmatch(c.device) is not None,
        f"device={c.device} is not allowed: choose auto, cpu, cuda or cuda:<index>, e.g. device=cuda:0",
    )
    check(
        is_int(c.cpu_threads) and c.cpu_threads >= 1,
        f"cpu_threads={c.cpu_threads} is not allowed: it must be an integer >= 1 (torch threads per run), e.g. 2",
    )
    check(
        c.fail_at_step >= -1,
        f"fail_at_step={c.fail_at_step} is not allowed: it must be -1 (never) or a step >= 0; e.g. fail_at_step=-1",
    )
    _validate_across_groups(c)


def _validate_names(c: Config) -> None:
    """``<group>.name`` is the option's own name: renaming it would build something the option does not hold."""
    for group, options in GROUPS.items():
        node = getattr(c, group)
        if isinstance(node, USER_SCHEMAS):
            continue  # the user names their own part
        same = [option for option, schema in options.items() if schema is type(node)]
        check(
            node.name in same,
            f"{group}.name={node.name} is not allowed: the name comes with the option; choose the option instead, "
            f"e.g. {group}={same[0]} (options: {', '.join(options)})",
        )


def _validate_across_groups(c: Config) -> None:
    """The rules that tie groups together: which model trains on which data, batch size against the training
    set, the skew's favoured group against the dataset's groups."""
    m = c.model
    d = c.data
    k = c.skew
    if not isinstance(m, CustomModelConfig) and not isinstance(d, LOADED):  # the built-in pairs
        sequence_data = isinstance(d, SortConfig)
        check(
            not isinstance(d, TeacherConfig) or isinstance(m, MLPConfig),
            f"model={m.name} is not allowed with data=teacher: the regression testbed trains an MLP; set model=mlp",
        )
        check(
            isinstance(m, TransformerConfig) == sequence_data,
            f"model={m.name} is not allowed with data={d.name}: the transformer trains on sequences (data=sort), "
            "mlp and cnn on feature vectors (data=clusters, digits or teacher); set "
            + ("data=sort" if isinstance(m, TransformerConfig) else "model=transformer" if sequence_data else "data"),
        )
        check(
            not isinstance(m, CNNConfig) or isinstance(d, DigitsConfig),
            f"model=cnn is not allowed with data={d.name}: the CNN reads 8x8 images; set data=digits",
        )
        check(
            not (isinstance(m, TransformerConfig) and m.causal and isinstance(d, SortConfig) and d.format != "lm"),
            f"model.causal=true is not allowed with data.format={getattr(d, 'format', '')}: with a causal mask "
            "position i cannot see the later input tokens its target depends on; set data.format=lm",
        )
    if isinstance(d, LOADED):
        return  # its size and groups are known once loaded: ablate.run.preflight checks them before any run
    n_train = train_size(d)
    check(
        resolve_batch_size(c) <= n_train,
        f"batch_size={c.batch_size} is not allowed with data={d.name}: its training split has {n_train} examples; "
        "lower batch_size (or batch_size=full)",
    )
    check_skew_groups(c.skew, d.name, n_groups(d))
    check(
        k.name != "spurious" or isinstance(d, ClustersConfig | DigitsConfig),
        f"skew=spurious is not allowed with data={d.name}: the cue is a label added to feature vectors; "
        "use data=clusters or data=digits",
    )


def check_skew_groups(k: Any, data_name: str, groups: int) -> None:
    """The skew's favoured group exists in the data, and a skew that favours one group has others."""
    check(
        0 <= k.group < groups,
        f"skew.group={k.group} is not allowed with data={data_name}: its groups are 0 .. {groups - 1}; "
        "e.g. skew.group=0",
    )
    check(
        groups >= 2 or k.name in ("none", "sorted"),
        f"skew={k.name} is not allowed with data={data_name} of {groups} group: it needs a favoured group and "
        "others; give the data group labels (at least 2 groups)",
    )


def resolve_batch_size(c: Config, n_train: int | None = None) -> int:
    """Examples per batch: ``batch_size``, or the whole training set (``n_train`` examples, or the size the
    data config states) for ``batch_size=full``."""
    if c.batch_size != "full":
        return int(c.batch_size)
    return n_train if n_train is not None else train_size(c.data)


def config_dict(c: Config) -> dict[str, Any]:
    """The config as nested plain dicts (JSON-serialisable)."""
    return asdict(c)


def run_id(c: Config) -> str:
    """Stable identity of a run: sha256 of the canonical JSON of its config without tracker settings.

    Output paths are not part of ``Config`` at all (they live in Hydra's own node), so two runs with the
    same factors get the same id wherever they were written.
    """
    d = {k: v for k, v in config_dict(c).items() if k not in _NOT_IDENTITY}
    d["optimizer"] = {k: v for k, v in d["optimizer"].items() if k not in ("default_lr", "tuned_lr")}  # `lr` holds it
    d.pop("lr_scale")  # likewise
    if not d["smoke"]:
        d.pop("smoke")  # ids of ordinary runs stay what they were before smoke runs existed
    if d["loss"] == "auto":
        d.pop("loss")  # likewise before the loss could be the user's
    canonical = json.dumps(d, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]
