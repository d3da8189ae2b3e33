"""Typed configuration: dataclass schemas, their ConfigStore registration, and validation.

The YAML files under ``conf/`` hold the values; the dataclasses here hold the types and a help string per
field. Each YAML option extends its schema (``defaults: [/schema/<group>/<option>@_here_, _self_]``), so
Hydra rejects a typo'd key or a wrongly typed value while composing.

``to_typed`` turns a composed ``DictConfig`` into plain dataclass objects once, at the entry, and
``validate`` checks the cross-field rules; both raise ``ConfigError`` with a one-line message that names the
bad value, what is allowed and how to fix it. Below the entry nothing reads a ``DictConfig``.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Optional

from omegaconf import MISSING, DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException


class ConfigError(ValueError):
    """A user mistake in the configuration; its message is one line and is shown without a traceback."""


def _help(text: str, default: Any = MISSING) -> Any:
    return field(default=default, metadata={"help": text})


# ----------------------------------------------------------------------------------------------- model
@dataclass
class MLPConfig:
    name: str = _help("model family")
    hidden_sizes: list[int] = field(default_factory=lambda: [], metadata={"help": "width of each hidden layer"})
    activation: str = _help("hidden activation: relu, gelu or tanh")
    init_scale: Optional[float] = _help(  # noqa: UP045 (OmegaConf reads Optional, not `float | None`)
        "null: PyTorch's default init; s > 0: weights ~ N(0, s^2/fan_in), biases 0 (s=1 is LeCun normal)", None
    )


@dataclass
class TransformerConfig:
    name: str = _help("model family")
    d_model: int = _help("width of the residual stream")
    n_heads: int = _help("attention heads (must divide d_model)")
    n_layers: int = _help("residual blocks")
    norm_position: str = _help("pre (x + f(LN(x))) or post (LN(x + f(x)), the original) layer norm")
    ffn_width: int = _help("hidden units of each block's feed-forward layer (the original Transformer: 4 x d_model)")
    causal: bool = _help("causal self-attention (a decoder: position i sees positions <= i); needs data.format=lm")
    dropout: float = _help("dropout probability in attention and MLP")


@dataclass
class CNNConfig:
    name: str = _help("model family")
    channels: list[int] = field(default_factory=lambda: [], metadata={"help": "channels of the two 3x3 convolutions"})


# ------------------------------------------------------------------------------------------------ data
@dataclass
class ClustersConfig:
    name: str = _help("dataset")
    seed: int = _help("seed of the generated dataset (fixed across runs; `seed` varies init and batch order)")
    n_train: int = _help("training examples")
    n_eval: int = _help("held-out examples")
    n_features: int = _help("input dimension")
    n_classes: int = _help("number of labels")
    clusters_per_class: int = _help("Gaussian clusters per label (the groups used by data skew)")
    center_scale: float = _help("standard deviation of the cluster centres")
    noise_scale: float = _help("standard deviation of each example around its centre")


@dataclass
class DigitsConfig:
    name: str = _help("dataset")
    seed: int = _help("seed of the train/held-out split")
    eval_fraction: float = _help("share of the 1797 digits held out for evaluation")


@dataclass
class SortConfig:
    name: str = _help("dataset")
    seed: int = _help("seed of the generated sequences")
    n_train: int = _help("training sequences")
    n_eval: int = _help("held-out sequences")
    seq_len: int = _help("tokens per sequence")
    vocab_size: int = _help("distinct tokens (chance token accuracy is about 1/vocab_size)")
    n_groups: int = _help("groups: each draws its tokens from its own band of the vocabulary")
    format: str = _help(
        "aligned (target i = output token i, for bidirectional attention) or lm (x SEP y, left to right)"
    )


@dataclass
class TeacherConfig:
    name: str = _help("dataset")
    seed: int = _help("seed of the inputs and of the teacher network")
    n_train: int = _help("training examples (batch_size=full trains on all of them every step)")
    n_eval: int = _help("held-out examples")
    n_features: int = _help("input dimension; inputs ~ N(0, I)")
    teacher_width: int = _help("hidden units of the random tanh teacher y = v . tanh(W x) (W, v ~ N(0, 1/fan_in))")
    noise_std: float = _help("label noise added to the teacher's output, before standardising")
    n_groups: int = _help("groups for skew: equal-count bins of the first input feature")


# ------------------------------------------------------------------------------------------------ skew
@dataclass
class SkewConfig:
    name: str = _help("batch order: none (i.i.d.), cluster, spurious or sorted")
    steps: int = _help("length of the skew phase in updates (also the early window of the over-fitting measures)")
    group: int = _help("the favoured group of related examples (dataset-defined; evaluated as eval/early/*)")
    strength: float = _help("cluster, spurious: share of every skew-phase batch drawn from the favoured group")
    cue_strength: float = _help("spurious: size of the label cue added to the favoured group's first features")
    cue_after: str = _help(
        "spurious: the cue after the skew phase: kept (on the favoured group throughout), removed (gone from the "
        "training data) or shuffled (on a random wrong label, so relying on it now hurts)"
    )
    recovery_tolerance: float = _help("rest group within this relative distance of its final loss = recovered")


# ---------------------------------------------------------------------------------------------- probes
@dataclass
class ProbesConfig:
    name: str = _help("probe preset: none (all off) or all (every probe at a moderate interval)")
    update_ratio_every: int = _help("per-layer update-to-weight ratio every this many steps (0: off)")
    second_moment_every: int = _help(
        "v_hat and effective-step quantiles and v_hat error every this many steps (0: off)"
    )
    second_moment_batches: int = _help("fresh batches averaged into the reference second moment")
    sharpness_every: int = _help("top Hessian eigenvalue (and preconditioned) every this many steps (0: off)")
    sharpness_iters: int = _help("Lanczos steps (Hessian-vector products) per sharpness measurement")
    sharpness_examples: int = _help("training examples in the fixed batch whose loss's Hessian is measured")
    dead_relu_every: int = _help("share of dead ReLU units on the held-out split every this many steps (0: off)")


# ------------------------------------------------------------------------------------------- optimizer
@dataclass
class SGDConfig:
    name: str = _help("optimizer")
    default_lr: float = _help("peak learning rate used when `lr` is not given")
    tuned_lr: float = _help("peak rate tuned at warmup=0 by sweeps/lr-tuning.yaml (python -m analysis.tune --write)")
    weight_decay: float = _help("L2 penalty added to the gradient")


@dataclass
class MomentumConfig:
    name: str = _help("optimizer")
    default_lr: float = _help("peak learning rate used when `lr` is not given")
    tuned_lr: float = _help("peak rate tuned at warmup=0 by sweeps/lr-tuning.yaml (python -m analysis.tune --write)")
    momentum: float = _help("momentum coefficient")
    nesterov: bool = _help("use Nesterov momentum")
    dampening: float = _help("dampening of the momentum buffer (must be 0 with nesterov)")
    weight_decay: float = _help("L2 penalty added to the gradient")


@dataclass
class AdamConfig:
    name: str = _help("optimizer (adam, adamw or radam share this schema)")
    default_lr: float = _help("peak learning rate used when `lr` is not given")
    tuned_lr: float = _help("peak rate tuned at warmup=0 by sweeps/lr-tuning.yaml (python -m analysis.tune --write)")
    beta1: float = _help("decay of the first-moment estimate")
    beta2: float = _help("decay of the second-moment estimate; warmup=auto uses ceil(2/(1-beta2))")
    eps: float = _help("added to sqrt(v_hat) in the denominator")
    weight_decay: float = _help("L2 penalty (adam, radam) or decoupled decay (adamw)")
    amsgrad: bool = _help("use the AMSGrad maximum of v (adam and adamw only)")


@dataclass
class RMSpropConfig:
    name: str = _help("optimizer")
    default_lr: float = _help("peak learning rate used when `lr` is not given")
    tuned_lr: float = _help("peak rate tuned at warmup=0 by sweeps/lr-tuning.yaml (python -m analysis.tune --write)")
    alpha: float = _help("decay of the squared-gradient average (plays the role of beta2 for warmup=auto)")
    eps: float = _help("added to the denominator")
    momentum: float = _help("momentum coefficient")
    centered: bool = _help("divide by the variance estimate instead of the raw second moment")
    weight_decay: float = _help("L2 penalty added to the gradient")


# -------------------------------------------------------------------------------------------- schedule
@dataclass
class ConstantScheduleConfig:
    name: str = _help("base schedule after warmup: the peak learning rate throughout")


@dataclass
class DecayScheduleConfig:
    name: str = _help("base schedule after warmup: cosine or linear decay to a floor")
    min_lr_fraction: float = _help("floor as a fraction of the peak learning rate, in [0, 1]")


@dataclass
class InverseSqrtScheduleConfig:
    name: str = _help("base schedule after warmup: peak * sqrt(timescale / (s + timescale))")
    timescale_steps: int = _help("steps after warmup at which the rate has fallen to peak / sqrt(2)")


# --------------------------------------------------------------------------------------------- tracker
@dataclass
class LocalTrackerConfig:
    name: str = _help("tracker preset")
    progress: str = _help("console output: auto (a bar on a terminal, a line per run otherwise), bar, line, off")


@dataclass
class WandbTrackerConfig:
    name: str = _help("tracker preset")
    progress: str = _help("console output: auto (a bar on a terminal, a line per run otherwise), bar, line, off")
    project: str = _help("W&B project")
    entity: str = _help("W&B entity (team or user); empty: your default")
    mode: str = _help("offline (default; sync later with python -m ablate.sync), online or disabled")
    log_every: int = _help(
        "one W&B point per this many updates: the mean over the window (plus every eval/probe line); the record "
        "keeps every step"
    )
    flush_every_s: float = _help("send buffered rows to W&B at most this often (and at the end of the run)")
    init_timeout_s: float = _help("give up starting W&B after this many seconds and continue without it")
    save_requirements: bool = _help("upload the environment's package list with each run (~70 ms per run here)")
    system_metrics: bool = _help("sample CPU/GPU/memory use in the background during each run")


# ----------------------------------------------------------------------------------------------- top
@dataclass
class Config:
    model: Any = _help("model config group")
    data: Any = _help("dataset config group")
    optimizer: Any = _help("optimizer config group")
    schedule: Any = _help("base schedule after warmup (config group)")
    tracker: Any = _help("where run events go (config group)")
    skew: Any = _help("order of the first batches (config group)")
    probes: Any = _help("mechanism measurements, each with its own interval (config group)")
    warmup: Any = _help("warmup length W in optimizer steps (int >= 0), or 'auto' = ceil(2/(1-beta2))")
    warmup_shape: str = _help("linear, constant, exponential, none (no warmup whatever W), flat (no ramp, same budget)")
    warmup_start_fraction: float = _help("constant: the rate during warmup; exponential: the start, as fraction of lr")
    lr: float = _help("peak learning rate p (default: the optimizer's default_lr x lr_scale)")
    lr_scale: float = _help("multiplies the optimizer's default rate when lr is not given (studies: its tuned_lr)")
    lr_sharpness_multiple: Optional[float] = _help(  # noqa: UP045
        "null: the peak rate is lr; c > 0: the peak rate is c x 2/sharpness, the sharpness (top Hessian eigenvalue "
        "of the training loss on the sharpness batch) measured at init; lr is then ignored",
        None,
    )
    steps: int = _help("total optimizer steps T, warmup included")
    batch_size: Any = _help("examples per training batch (int >= 1), or full: the whole training set every step")
    seed: int = _help("seed of model init and batch order")
    eval_every: int = _help("evaluate on the held-out split every this many steps (and at the end)")
    metrics_every: int = _help(
        "measure train/acc, opt/grad_norm and opt/update_ratio every this many steps (1: every step)"
    )
    diverge_factor: float = _help("diverged when the train loss stays above this multiple of its first value ...")
    diverge_window: int = _help("... for this many consecutive updates (a spike that recovers sooner is not)")
    untrained_margin: float = _help(
        "outcome: trained when final held-out loss <= (1 - m) x chance loss, or acc >= chance acc + m (1 - chance acc)"
    )
    device: str = _help("auto (CUDA when present), cpu, cuda or cuda:<index>")
    cpu_threads: int = _help(
        "torch threads of the run (torch.set_num_threads), set by every launcher; part of the run's identity, "
        "since CPU results differ in the last bits between thread counts"
    )
    fail_at_step: int = _help("raise an error at this step, to test failure handling (-1: never)")
    study: str = _help(
        "study name: a plain name or a relative path of plain parts (letters, digits, . _ -, joined by /); a "
        "multirun goes to outputs/studies/<study> and re-running it resumes"
    )
    smoke: bool = _help("3 updates per run, into outputs/studies/smoke/...: checks that a study runs, measures nothing")


GROUPS: dict[str, dict[str, type]] = {
    "model": {"mlp": MLPConfig, "cnn": CNNConfig, "transformer": TransformerConfig},
    "data": {
        "clusters": ClustersConfig,
        "digits": DigitsConfig,
        "sort": SortConfig,
        "reverse": SortConfig,
        "teacher": TeacherConfig,
    },
    "optimizer": {
        "sgd": SGDConfig,
        "momentum": MomentumConfig,
        "adam": AdamConfig,
        "adamw": AdamConfig,
        "radam": AdamConfig,
        "rmsprop": RMSpropConfig,
    },
    "schedule": {
        "constant": ConstantScheduleConfig,
        "cosine": DecayScheduleConfig,
        "linear": DecayScheduleConfig,
        "inverse_sqrt": InverseSqrtScheduleConfig,
    },
    "tracker": {"local": LocalTrackerConfig, "wandb": WandbTrackerConfig},
    "skew": {"none": SkewConfig, "cluster": SkewConfig, "spurious": SkewConfig, "sorted": SkewConfig},
    "probes": {"none": ProbesConfig, "all": ProbesConfig},
}
"""Every option of every config group and its schema; ``conf/<group>/<option>.yaml`` must match."""

WARMUP_SHAPES = ("linear", "constant", "exponential", "none", "flat")
ACTIVATIONS = ("relu", "gelu", "tanh")
CUE_AFTER = ("kept", "removed", "shuffled")
PROGRESS_MODES = ("auto", "bar", "line", "off")
DIGITS_TOTAL = 1797  # examples in scikit-learn's bundled 8x8 digits

# Keys that do not change what a run computes, left out of its identity (run_id).
_NOT_IDENTITY = ("tracker", "study")
STUDY_NAME = re.compile(r"[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*")


SWEEPS_DIR = Path(__file__).resolve().parent.parent / "sweeps"  # named studies, one YAML file each
SMOKE_UPDATES = 3  # updates per run with smoke=true (--smoke)


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


def multiply(a: float, b: float) -> float:
    """``${ablate_mul:a,b}`` = a * b (OmegaConf has no arithmetic): ``lr = default_lr x lr_scale``."""
    return float(a) * float(b)


OmegaConf.register_new_resolver("ablate_mul", multiply, replace=True)
# conf/config.yaml: hydra.sweep.dir = outputs/studies/${ablate_study_dir:${study},'<date>/<time>',${smoke}}
OmegaConf.register_new_resolver("ablate_study_dir", study_dir_name, use_cache=True, replace=True)


def register_configs() -> None:
    """Register the schemas in Hydra's ConfigStore (idempotent)."""
    from hydra.core.config_store import ConfigStore

    cs = ConfigStore.instance()
    cs.store(name="schema", node=Config)
    for group, options in GROUPS.items():
        for option, schema in options.items():
            cs.store(group=f"schema/{group}", name=option, node=schema)
    from hydra_plugins.ablate_sweeper.ablate_sweeper import ValidatingSweeperConf

    cs.store(group="hydra/sweeper", name="ablate", node=ValidatingSweeperConf)
    from hydra_plugins.ablate_launcher.local_launcher import LocalLauncherConf

    cs.store(group="hydra/launcher", name="ablate_local", node=LocalLauncherConf)
    for path in sorted(SWEEPS_DIR.glob("*.yaml")):  # named studies: python -m ablate -m +sweep=<name>
        cs.store(group="sweep", name=path.stem, node=OmegaConf.load(path), package="_global_")


def help_of(schema: type) -> dict[str, str]:
    """Field name -> help string of a schema dataclass."""
    return {f.name: f.metadata.get("help", "") for f in fields(schema)}


# ------------------------------------------------------------------------------------- typed objects
def to_typed(cfg: DictConfig) -> Config:
    """Resolve a composed config into dataclass objects and validate it; raises ConfigError."""
    try:
        config = OmegaConf.to_object(cfg)
    except OmegaConfBaseException as err:
        first_line = str(err).strip().splitlines()[0]
        raise ConfigError(f"invalid config: {first_line}") from None
    assert isinstance(config, Config)
    validate(config)
    return config


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


DEVICE = re.compile(r"auto|cpu|cuda(:[0-9]+)?")
WANDB_FORBIDDEN = "/\\#?%:"  # characters W&B does not take in a project or entity name
WANDB_NAME_MAX = 128
_OPTIMIZER_EXAMPLES = {"beta1": 0.9, "beta2": 0.999, "alpha": 0.99, "momentum": 0.9}


def validate(c: Config) -> None:
    """Range and cross-field checks of every field, each failing with a one-line message: the value, what is
    allowed, and a fix.

    Cheap (no I/O, no torch): the sweeper runs it for every grid point. Whether a CUDA device exists is a
    property of the machine, not of the config: ``ablate.cli.check_device`` checks it where the run starts.
    tests/test_bad_input.py holds a bad value for every field and fails when a field has no check.
    """
    _check(
        _is_int(c.steps) and c.steps >= 1,
        f"steps={c.steps} is not allowed: total steps must be an integer >= 1; set e.g. steps=1000",
    )
    check_study_name(c.study)
    _check(
        c.warmup == "auto" or (_is_int(c.warmup) and c.warmup >= 0),
        f"warmup={c.warmup} is not allowed: it must be an integer number of steps >= 0, or auto; e.g. warmup=100",
    )
    warmup_steps = resolve_warmup_steps(c)
    _check(
        warmup_steps < c.steps,
        f"warmup={c.warmup}{f' ({warmup_steps} steps)' if c.warmup == 'auto' else ''} is not allowed with "
        f"steps={c.steps}: warmup counts inside "
        f"the total, so it must be < steps; lower warmup or raise steps above {warmup_steps}",
    )
    _check(
        c.warmup_shape in WARMUP_SHAPES,
        f"warmup_shape={c.warmup_shape} is not allowed: choose one of {', '.join(WARMUP_SHAPES)}",
    )
    _check(
        0.0 < c.warmup_start_fraction <= 1.0,
        f"warmup_start_fraction={c.warmup_start_fraction} is not allowed: it must be in (0, 1]; e.g. 0.1",
    )
    # lr = optimizer.default_lr x lr_scale unless given: name the input that is wrong before the product
    for key in ("default_lr", "tuned_lr"):
        value = getattr(c.optimizer, key)
        _check(
            _finite(value) and value > 0,
            f"optimizer.{key}={value} is not allowed: it must be a finite learning rate > 0; e.g. optimizer.{key}=1e-3",
        )
    _check(
        _finite(c.lr_scale) and c.lr_scale > 0,
        f"lr_scale={c.lr_scale} is not allowed: it must be a finite number > 0 (it multiplies the optimizer's "
        "default rate); e.g. lr_scale=1.0",
    )
    _check(
        math.isfinite(c.lr) and c.lr > 0,
        f"lr={c.lr} is not allowed: the peak learning rate must be a finite number > 0; e.g. lr=1e-3",
    )
    _check(
        c.batch_size == "full" or (_is_int(c.batch_size) and c.batch_size >= 1),
        f"batch_size={c.batch_size} is not allowed: it must be an integer >= 1 or full; e.g. batch_size=64",
    )
    _check(c.seed >= 0, f"seed={c.seed} is not allowed: it must be an integer >= 0; e.g. seed=0")
    _check(
        _is_int(c.diverge_window) and c.diverge_window >= 1,
        f"diverge_window={c.diverge_window} is not allowed: it must be an integer >= 1 (1: stop at the first spike)"
        "; e.g. diverge_window=50",
    )
    _check(
        0.0 <= c.untrained_margin < 1.0,
        f"untrained_margin={c.untrained_margin} is not allowed: it must be in [0, 1), e.g. 0.1",
    )
    _check(
        c.lr_sharpness_multiple is None or (math.isfinite(c.lr_sharpness_multiple) and c.lr_sharpness_multiple > 0),
        f"lr_sharpness_multiple={c.lr_sharpness_multiple} is not allowed: it must be a number > 0 (e.g. 1.5 = 1.5 x "
        "the stability limit 2/sharpness) or null",
    )
    _check(
        c.eval_every >= 1,
        f"eval_every={c.eval_every} is not allowed: it must be an integer >= 1 (steps between evaluations); "
        "e.g. eval_every=50",
    )
    _check(
        c.metrics_every >= 1,
        f"metrics_every={c.metrics_every} is not allowed: it must be an integer >= 1 (1 measures every step); "
        "e.g. metrics_every=25",
    )
    _check(
        c.diverge_factor > 1,
        f"diverge_factor={c.diverge_factor} is not allowed: it must be > 1 (use inf to stop only on NaN/inf); "
        "e.g. diverge_factor=10",
    )
    _check(
        DEVICE.fullmatch(c.device) is not None,
        f"device={c.device} is not allowed: choose auto, cpu, cuda or cuda:<index>, e.g. device=cuda:0",
    )
    _check(
        _is_int(c.cpu_threads) and c.cpu_threads >= 1,
        f"cpu_threads={c.cpu_threads} is not allowed: it must be an integer >= 1 (torch threads per run), e.g. 2",
    )
    _check(
        c.fail_at_step >= -1,
        f"fail_at_step={c.fail_at_step} is not allowed: it must be -1 (never) or a step >= 0; e.g. fail_at_step=-1",
    )
    _validate_groups(c)


def _validate_names(c: Config) -> None:
    """``<group>.name`` is the option's own name: renaming it would build something the option does not hold."""
    for group, options in GROUPS.items():
        node = getattr(c, group)
        same = [option for option, schema in options.items() if schema is type(node)]
        _check(
            node.name in same,
            f"{group}.name={node.name} is not allowed: the name comes with the option; choose the option instead, "
            f"e.g. {group}={same[0]} (options: {', '.join(options)})",
        )


def _validate_groups(c: Config) -> None:
    _validate_names(c)
    m = c.model
    d = c.data
    if isinstance(m, MLPConfig):
        _check(
            m.init_scale is None or (math.isfinite(m.init_scale) and m.init_scale > 0),
            f"model.init_scale={m.init_scale} is not allowed: it must be a number > 0 (1 = LeCun normal), or null "
            "for PyTorch's default init; e.g. model.init_scale=1",
        )
        _check(
            all(_is_int(h) and h >= 1 for h in m.hidden_sizes),
            f"model.hidden_sizes={m.hidden_sizes} is not allowed: widths must be integers >= 1, e.g. [128,128]",
        )
        _check(
            m.activation in ACTIVATIONS,
            f"model.activation={m.activation} is not allowed: choose one of {', '.join(ACTIVATIONS)}",
        )
    sequence_data = isinstance(d, SortConfig)
    _check(
        not isinstance(d, TeacherConfig) or isinstance(m, MLPConfig),
        f"model={m.name} is not allowed with data=teacher: the regression testbed trains an MLP; set model=mlp",
    )
    _check(
        isinstance(m, TransformerConfig) == sequence_data,
        f"model={m.name} is not allowed with data={d.name}: the transformer trains on sequences (data=sort), "
        "mlp and cnn on feature vectors (data=clusters, digits or teacher); set "
        + ("data=sort" if isinstance(m, TransformerConfig) else "model=transformer" if sequence_data else "data"),
    )
    if isinstance(m, CNNConfig):
        _check(
            isinstance(d, DigitsConfig),
            f"model=cnn is not allowed with data={d.name}: the CNN reads 8x8 images; set data=digits",
        )
        _check(
            len(m.channels) == 2 and all(_is_int(ch) and ch >= 1 for ch in m.channels),
            f"model.channels={m.channels} is not allowed: give two channel counts >= 1, e.g. [16,32]",
        )
    if isinstance(m, TransformerConfig):
        _check(
            m.norm_position in ("pre", "post"),
            f"model.norm_position={m.norm_position} is not allowed: choose pre or post",
        )
        _check(m.d_model >= 1, f"model.d_model={m.d_model} is not allowed: it must be >= 1, e.g. model.d_model=64")
        _check(
            m.n_heads >= 1 and m.d_model % m.n_heads == 0,
            f"model.n_heads={m.n_heads} is not allowed with model.d_model={m.d_model}: heads must divide d_model, "
            "e.g. model.n_heads=4 with model.d_model=64",
        )
        _check(m.n_layers >= 1, f"model.n_layers={m.n_layers} is not allowed: it must be >= 1, e.g. model.n_layers=2")
        _check(m.ffn_width >= 1, f"model.ffn_width={m.ffn_width} is not allowed: it must be >= 1, e.g. 4 x d_model")
        _check(
            not m.causal or not isinstance(d, SortConfig) or d.format == "lm",
            f"model.causal=true is not allowed with data.format={getattr(d, 'format', '')}: with a causal mask "
            "position i cannot see the later input tokens its target depends on; set data.format=lm",
        )
        _check(
            0 <= m.dropout < 1, f"model.dropout={m.dropout} is not allowed: it must be in [0, 1), e.g. model.dropout=0"
        )
    _check(
        d.seed >= 0,
        f"data.seed={d.seed} is not allowed: it must be an integer >= 0 (numpy seeds are non-negative); "
        "e.g. data.seed=0",
    )
    if isinstance(d, SortConfig):
        for key in ("n_train", "n_eval", "seq_len", "n_groups"):
            value = getattr(d, key)
            _check(
                value >= 1, f"data.{key}={value} is not allowed: it must be an integer >= 1; set data.{key}=1 or more"
            )
        _check(
            d.vocab_size >= 2,
            f"data.vocab_size={d.vocab_size} is not allowed: it must be >= 2, e.g. data.vocab_size=16",
        )
        _check(d.format in ("aligned", "lm"), f"data.format={d.format} is not allowed: choose aligned or lm")
        _check(
            d.n_groups <= d.vocab_size,
            f"data.n_groups={d.n_groups} is not allowed with data.vocab_size={d.vocab_size}: at most one group per "
            "token; lower data.n_groups or raise data.vocab_size",
        )
    if isinstance(d, ClustersConfig):
        for key in ("n_train", "n_eval", "n_features", "n_classes", "clusters_per_class"):
            value = getattr(d, key)
            _check(
                value >= 1, f"data.{key}={value} is not allowed: it must be an integer >= 1; set data.{key}=1 or more"
            )
        _check(
            d.n_classes >= 2, f"data.n_classes={d.n_classes} is not allowed: it must be >= 2, e.g. data.n_classes=10"
        )
        for key, example in (("center_scale", 1.0), ("noise_scale", 1.2)):
            value = getattr(d, key)
            _check(
                _finite(value) and value >= 0,
                f"data.{key}={value} is not allowed: it must be a finite standard deviation >= 0, "
                f"e.g. data.{key}={example}",
            )
    if isinstance(d, TeacherConfig):
        for key in ("n_train", "n_eval", "n_features", "teacher_width", "n_groups"):
            value = getattr(d, key)
            _check(
                value >= 1, f"data.{key}={value} is not allowed: it must be an integer >= 1; set data.{key}=1 or more"
            )
        _check(
            _finite(d.noise_std) and d.noise_std >= 0,
            f"data.noise_std={d.noise_std} is not allowed: it must be a finite standard deviation >= 0, "
            "e.g. data.noise_std=0.1",
        )
        _check(
            d.n_groups <= d.n_train,
            f"data.n_groups={d.n_groups} is not allowed with data.n_train={d.n_train}: at most one group per "
            "example; lower data.n_groups",
        )
    if isinstance(d, DigitsConfig):
        _check(
            0.0 < d.eval_fraction < 1.0 and 1 <= round(DIGITS_TOTAL * d.eval_fraction) < DIGITS_TOTAL,
            f"data.eval_fraction={d.eval_fraction} is not allowed: it must be in (0, 1) and leave at least one of "
            f"the {DIGITS_TOTAL} digits on each side, e.g. 0.25",
        )
    n_train = train_size(d)
    _check(
        resolve_batch_size(c) <= n_train,
        f"batch_size={c.batch_size} is not allowed with data={d.name}: its training split has {n_train} examples; "
        "lower batch_size (or batch_size=full)",
    )
    o = c.optimizer
    for key in ("beta1", "beta2", "alpha", "momentum"):
        if hasattr(o, key):
            value = getattr(o, key)
            _check(
                0.0 <= value < 1.0,
                f"optimizer.{key}={value} is not allowed: it must be in [0, 1), "
                f"e.g. optimizer.{key}={_OPTIMIZER_EXAMPLES[key]}",
            )
    if hasattr(o, "eps"):
        _check(
            _finite(o.eps) and o.eps > 0,
            f"optimizer.eps={o.eps} is not allowed: it must be a finite number > 0, e.g. 1e-8",
        )
    _check(
        _finite(o.weight_decay) and o.weight_decay >= 0,
        f"optimizer.weight_decay={o.weight_decay} is not allowed: it must be a finite number >= 0, "
        "e.g. optimizer.weight_decay=0.01",
    )
    if isinstance(o, MomentumConfig):
        _check(
            0.0 <= o.dampening <= 1.0,
            f"optimizer.dampening={o.dampening} is not allowed: it must be in [0, 1], e.g. optimizer.dampening=0",
        )
        _check(
            not o.nesterov or o.dampening == 0,
            f"optimizer.dampening={o.dampening} is not allowed with nesterov=true: set optimizer.dampening=0",
        )
    if isinstance(o, AdamConfig) and o.name == "radam":
        _check(not o.amsgrad, "optimizer.amsgrad=true is not allowed with optimizer=radam: set amsgrad=false")
    s = c.schedule
    if isinstance(s, DecayScheduleConfig):
        _check(
            0.0 <= s.min_lr_fraction <= 1.0,
            f"schedule.min_lr_fraction={s.min_lr_fraction} is not allowed: it must be in [0, 1], "
            "e.g. schedule.min_lr_fraction=0",
        )
    if isinstance(s, InverseSqrtScheduleConfig):
        _check(
            s.timescale_steps >= 1,
            f"schedule.timescale_steps={s.timescale_steps} is not allowed: it must be an integer >= 1, "
            "e.g. schedule.timescale_steps=100",
        )
    _validate_skew(c)
    p = c.probes
    for key in ("update_ratio_every", "second_moment_every", "sharpness_every", "dead_relu_every"):
        value = getattr(p, key)
        _check(
            value >= 0,
            f"probes.{key}={value} is not allowed: it must be an integer >= 0; set probes.{key}=0 to turn it off",
        )
    for key in ("second_moment_batches", "sharpness_iters", "sharpness_examples"):
        value = getattr(p, key)
        _check(
            value >= 1,
            f"probes.{key}={value} is not allowed: it must be an integer >= 1; set probes.{key}=1 or more",
        )
    t = c.tracker
    if isinstance(t, WandbTrackerConfig):
        _check(
            t.project != "" and len(t.project) <= WANDB_NAME_MAX and not set(t.project) & set(WANDB_FORBIDDEN),
            f"tracker.project={t.project} is not allowed: a W&B project is 1 to {WANDB_NAME_MAX} characters without "
            f"any of {' '.join(WANDB_FORBIDDEN)}; e.g. tracker.project=ablate",
        )
        _check(
            len(t.entity) <= WANDB_NAME_MAX and not set(t.entity) & set(WANDB_FORBIDDEN + " "),
            f"tracker.entity={t.entity} is not allowed: a W&B team or user name has no spaces and none of "
            f"{' '.join(WANDB_FORBIDDEN)}; e.g. tracker.entity=my-team, or empty for your default",
        )
        _check(
            t.mode in ("offline", "online", "disabled"),
            f"tracker.mode={t.mode} is not allowed: choose offline, online or disabled",
        )
        _check(
            t.log_every >= 1,
            f"tracker.log_every={t.log_every} is not allowed: it must be >= 1, e.g. tracker.log_every=50",
        )
        _check(
            _finite(t.init_timeout_s) and t.init_timeout_s > 0,
            f"tracker.init_timeout_s={t.init_timeout_s} is not allowed: it must be a finite number of seconds > 0, "
            "e.g. tracker.init_timeout_s=30",
        )
        _check(
            _finite(t.flush_every_s) and t.flush_every_s >= 0,
            f"tracker.flush_every_s={t.flush_every_s} is not allowed: it must be a finite number of seconds >= 0 "
            "(0: send every row), e.g. tracker.flush_every_s=30",
        )
    _check(
        t.progress in PROGRESS_MODES,
        f"tracker.progress={t.progress} is not allowed: choose one of {', '.join(PROGRESS_MODES)}",
    )


def n_groups(data: Any) -> int:
    """How many groups of related examples a dataset has (see ablate/data)."""
    if isinstance(data, ClustersConfig):
        return data.clusters_per_class
    if isinstance(data, DigitsConfig):
        return 10
    return int(data.n_groups)


def train_size(data: Any) -> int:
    """Training examples of a dataset config."""
    if isinstance(data, DigitsConfig):
        return DIGITS_TOTAL - round(DIGITS_TOTAL * data.eval_fraction)
    return int(data.n_train)


def resolve_batch_size(c: Config) -> int:
    """Examples per batch: ``batch_size``, or the whole training set for ``batch_size=full``."""
    return train_size(c.data) if c.batch_size == "full" else int(c.batch_size)


def _validate_skew(c: Config) -> None:
    k = c.skew
    _check(k.steps >= 0, f"skew.steps={k.steps} is not allowed: it must be an integer >= 0, e.g. skew.steps=200")
    groups = n_groups(c.data)
    _check(
        0 <= k.group < groups,
        f"skew.group={k.group} is not allowed with data={c.data.name}: its groups are 0 .. {groups - 1}; "
        "e.g. skew.group=0",
    )
    _check(
        groups >= 2 or k.name in ("none", "sorted"),
        f"skew={k.name} is not allowed with data={c.data.name} of {groups} group: it needs a favoured group and "
        "others; use a dataset with at least 2 groups",
    )
    _check(0.0 < k.strength <= 1.0, f"skew.strength={k.strength} is not allowed: it must be in (0, 1], e.g. 0.75")
    _check(
        _finite(k.cue_strength) and k.cue_strength >= 0,
        f"skew.cue_strength={k.cue_strength} is not allowed: it must be a finite number >= 0 (0: no cue), "
        "e.g. skew.cue_strength=3",
    )
    _check(
        _finite(k.recovery_tolerance) and k.recovery_tolerance > 0,
        f"skew.recovery_tolerance={k.recovery_tolerance} is not allowed: it must be a finite number > 0, "
        "e.g. skew.recovery_tolerance=0.05",
    )
    if k.name == "spurious":
        _check(
            isinstance(c.data, ClustersConfig | DigitsConfig),
            f"skew=spurious is not allowed with data={c.data.name}: the cue is a label added to feature vectors; "
            "use data=clusters or data=digits",
        )
    _check(
        k.cue_after in CUE_AFTER,
        f"skew.cue_after={k.cue_after} is not allowed: choose one of {', '.join(CUE_AFTER)}",
    )


def second_moment_decay(optimizer: Any) -> float | None:
    """The optimizer's second-moment decay (Adam's beta2, RMSProp's alpha), or None if it has none."""
    if isinstance(optimizer, AdamConfig):
        return optimizer.beta2
    if isinstance(optimizer, RMSpropConfig):
        return optimizer.alpha
    return None


def resolve_warmup_steps(c: Config) -> int:
    """Warmup length W in steps.

    ``warmup`` is an int >= 0, or ``auto``: the untuned rule ``W = ceil(2 / (1 - beta2))`` of Ma & Yarats
    (2021), e.g. 2000 steps for beta2 = 0.999 (RMSProp's ``alpha`` stands in for beta2). ``warmup_shape=none``
    means no warmup whatever W says, so it resolves to 0.
    """
    _check(
        c.warmup == "auto" or (isinstance(c.warmup, int) and not isinstance(c.warmup, bool) and c.warmup >= 0),
        f"warmup={c.warmup} is not allowed: it must be an integer number of steps >= 0, or auto",
    )
    if c.warmup_shape == "none":
        return 0
    if c.warmup != "auto":
        return int(c.warmup)
    beta2 = second_moment_decay(c.optimizer)
    _check(
        beta2 is not None,
        f"warmup=auto is not allowed with optimizer={c.optimizer.name}: the rule ceil(2/(1-beta2)) needs a "
        "second-moment decay (adam, adamw, radam, rmsprop); set warmup to a number of steps",
    )
    assert beta2 is not None
    _check(beta2 > 0, f"warmup=auto needs beta2 > 0, got optimizer beta2={beta2}; set warmup to a number")
    steps = math.ceil(2.0 / (1.0 - beta2) - 1e-9)  # tolerance: 2/(1-0.999) is 2000.0000000000018
    return steps


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
    canonical = json.dumps(d, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]
