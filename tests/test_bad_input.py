"""Bad input: every field has a range check, and a rejected command says so in one line and writes nothing.

The audit enforces itself: ``test_every_field_has_a_row_in_the_table`` fails when a field of ``Config`` or of
any schema in ``GROUPS`` has no bad value in ``BAD_VALUES``, and ``test_every_field_rejects_a_nonsense_value``
feeds every field a value no field may take (NaN for a float, -10^6 for an integer, ``%??`` for a string), so
a field added later without a check fails both.
"""

from __future__ import annotations

import copy
import functools
import re
import typing
import uuid
from dataclasses import fields
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf

from ablate.checks import ConfigError
from ablate.cli.compose import check_device, compose_config
from ablate.cli.overrides import default_options, precheck_overrides
from ablate.config import CONF_DIR, GROUPS, Config, to_typed
from ablate.study.names import check_study_name, study_dir_name
from tests.conftest import run_ablate

# Options that only compose together: a schema's fields are checked with its option and this partner.
PARTNER = {
    "model=transformer": ["data=sort"],
    "model=cnn": ["data=digits"],
    "data=sort": ["model=transformer"],
    "data=reverse": ["model=transformer"],
    "model=custom": ["model.target=a.b:C"],  # the user's parts: a target (or a file) is what they are
    "data=npz": ["data.path=x.npz"],
    "data=custom": ["data.target=a.b:c"],
    "optimizer=custom": ["optimizer.target=a.B"],
    "schedule=custom": ["schedule.target=a.f"],
}
# A message must say how to fix the value: one of these words (or an example after "e.g.").
FIX = re.compile(r"e\.g\.|choose|\bset\b|\buse\b|\blower\b|\bgive\b")

BAD_VALUES: list[tuple[list[str], str]] = [
    # ------------------------------------------------------------------ top level (Config)
    (["warmup=-5"], "warmup=-5 is not allowed: it must be an integer number of steps >= 0, or auto"),
    (["warmup_shape=cosine"], "warmup_shape=cosine is not allowed: choose one of linear"),
    (["warmup_start_fraction=0"], "warmup_start_fraction=0.0 is not allowed: it must be in (0, 1]"),
    (["warmup_start_fraction=nan"], "warmup_start_fraction=nan is not allowed"),
    (["lr=0"], "lr=0.0 is not allowed: the peak learning rate must be a finite number > 0"),
    (["lr=inf"], "lr=inf is not allowed"),
    (["lr_scale=-1"], "lr_scale=-1.0 is not allowed: it must be a finite number > 0"),
    (["lr_scale=inf"], "lr_scale=inf is not allowed"),
    (["lr_sharpness_multiple=-1"], "lr_sharpness_multiple=-1.0 is not allowed: it must be a number > 0"),
    (["lr_sharpness_multiple=inf"], "lr_sharpness_multiple=inf is not allowed"),
    (["steps=0"], "steps=0 is not allowed: total steps must be an integer >= 1"),
    (["loss=focal"], "loss=focal is not allowed: auto (the task kind's loss), or the import path"),
    (["batch_size=0"], "batch_size=0 is not allowed: it must be an integer >= 1 or full"),
    (["batch_size=half"], "batch_size=half is not allowed"),
    (["seed=-1"], "seed=-1 is not allowed: it must be an integer >= 0"),
    (["eval_every=0"], "eval_every=0 is not allowed: it must be an integer >= 1"),
    (["metrics_every=0"], "metrics_every=0 is not allowed: it must be an integer >= 1"),
    (["diverge_factor=1"], "diverge_factor=1.0 is not allowed: it must be > 1"),
    (["diverge_factor=nan"], "diverge_factor=nan is not allowed"),
    (["diverge_window=0"], "diverge_window=0 is not allowed: it must be an integer >= 1"),
    (["untrained_margin=1"], "untrained_margin=1.0 is not allowed: it must be in [0, 1)"),
    (["untrained_margin=-0.1"], "untrained_margin=-0.1 is not allowed"),
    (["device=tpu"], "device=tpu is not allowed: choose auto, cpu, cuda or cuda:<index>"),
    (["device=cuda:x"], "device=cuda:x is not allowed"),
    (["cpu_threads=0"], "cpu_threads=0 is not allowed: it must be an integer >= 1"),
    (["fail_at_step=-2"], "fail_at_step=-2 is not allowed: it must be -1 (never) or a step >= 0"),
    (["study=../../etc"], "study=../../etc is not allowed (a '.' or '..' part"),
    (["study=/tmp/x"], "study=/tmp/x is not allowed (an absolute path)"),
    # ------------------------------------------------------------------ model
    (["model.name=resnet"], "model.name=resnet is not allowed: the name comes with the option"),
    (["model.hidden_sizes=[128,0]"], "model.hidden_sizes=[128, 0] is not allowed: widths must be integers >= 1"),
    (["model.activation=swish"], "model.activation=swish is not allowed: choose one of relu, gelu, tanh"),
    (["model.init_scale=0"], "model.init_scale=0.0 is not allowed: it must be a number > 0"),
    (["model=cnn", "data=digits", "model.name=mlp"], "model.name=mlp is not allowed"),
    (["model=cnn", "data=digits", "model.channels=[16]"], "model.channels=[16] is not allowed: give two"),
    (["model=transformer", "data=sort", "model.name=gpt"], "model.name=gpt is not allowed"),
    (["model=transformer", "data=sort", "model.d_model=0"], "model.d_model=0 is not allowed: it must be >= 1"),
    (["model=transformer", "data=sort", "model.n_heads=3"], "model.n_heads=3 is not allowed with model.d_model=64"),
    (["model=transformer", "data=sort", "model.n_layers=0"], "model.n_layers=0 is not allowed: it must be >= 1"),
    (["model=transformer", "data=sort", "model.norm_position=mid"], "model.norm_position=mid is not allowed"),
    (["model=transformer", "data=sort", "model.ffn_width=0"], "model.ffn_width=0 is not allowed"),
    (["model=transformer", "data=sort", "model.dropout=1"], "model.dropout=1.0 is not allowed: it must be in [0, 1)"),
    # ------------------------------------------------------------------ data
    (["data.name=moons"], "data.name=moons is not allowed"),
    (["data.seed=-1"], "data.seed=-1 is not allowed: it must be an integer >= 0"),
    (["data.n_train=0"], "data.n_train=0 is not allowed: it must be an integer >= 1"),
    (["data.n_eval=0"], "data.n_eval=0 is not allowed"),
    (["data.n_features=0"], "data.n_features=0 is not allowed"),
    (["data.n_classes=1"], "data.n_classes=1 is not allowed: it must be >= 2"),
    (["data.clusters_per_class=0"], "data.clusters_per_class=0 is not allowed"),
    (["data.center_scale=-1"], "data.center_scale=-1.0 is not allowed: it must be a finite standard deviation >= 0"),
    (["data.noise_scale=-1"], "data.noise_scale=-1.0 is not allowed: it must be a finite standard deviation >= 0"),
    (["data.noise_scale=inf"], "data.noise_scale=inf is not allowed"),
    (["data=digits", "data.name=mnist"], "data.name=mnist is not allowed"),
    (["data=digits", "data.seed=-3"], "data.seed=-3 is not allowed"),
    (["data=digits", "data.eval_fraction=1"], "data.eval_fraction=1.0 is not allowed: it must be in (0, 1)"),
    (["data=digits", "data.eval_fraction=0.0001"], "data.eval_fraction=0.0001 is not allowed"),
    (["model=transformer", "data=sort", "data.name=shuffle"], "data.name=shuffle is not allowed"),
    (["model=transformer", "data=sort", "data.seed=-1"], "data.seed=-1 is not allowed"),
    (["model=transformer", "data=sort", "data.n_train=0"], "data.n_train=0 is not allowed"),
    (["model=transformer", "data=sort", "data.n_eval=0"], "data.n_eval=0 is not allowed"),
    (["model=transformer", "data=sort", "data.seq_len=0"], "data.seq_len=0 is not allowed"),
    (["model=transformer", "data=sort", "data.vocab_size=1"], "data.vocab_size=1 is not allowed: it must be >= 2"),
    (["model=transformer", "data=sort", "data.n_groups=0"], "data.n_groups=0 is not allowed"),
    (["model=transformer", "data=sort", "data.n_groups=17"], "data.n_groups=17 is not allowed with data.vocab_size"),
    (["model=transformer", "data=sort", "data.format=json"], "data.format=json is not allowed: choose aligned or lm"),
    (["data=teacher", "data.name=student"], "data.name=student is not allowed"),
    (["data=teacher", "data.seed=-1"], "data.seed=-1 is not allowed"),
    (["data=teacher", "data.n_train=0"], "data.n_train=0 is not allowed"),
    (["data=teacher", "data.n_eval=0"], "data.n_eval=0 is not allowed"),
    (["data=teacher", "data.n_features=0"], "data.n_features=0 is not allowed"),
    (["data=teacher", "data.teacher_width=0"], "data.teacher_width=0 is not allowed"),
    (["data=teacher", "data.noise_std=-0.1"], "data.noise_std=-0.1 is not allowed: it must be a finite standard"),
    (["data=teacher", "data.n_groups=0"], "data.n_groups=0 is not allowed"),
    (["data=teacher", "data.n_groups=600"], "data.n_groups=600 is not allowed with data.n_train=512"),
    # ------------------------------------------------------------------ optimizer
    (["optimizer=sgd", "optimizer.name=sgdm"], "optimizer.name=sgdm is not allowed"),
    (["optimizer=sgd", "optimizer.default_lr=0"], "optimizer.default_lr=0.0 is not allowed: it must be a finite"),
    (["optimizer=sgd", "optimizer.tuned_lr=-1"], "optimizer.tuned_lr=-1.0 is not allowed"),
    (["optimizer=sgd", "optimizer.weight_decay=-1"], "optimizer.weight_decay=-1.0 is not allowed"),
    (["optimizer=momentum", "optimizer.name=heavy-ball"], "optimizer.name=heavy-ball is not allowed"),
    (["optimizer=momentum", "optimizer.default_lr=nan"], "optimizer.default_lr=nan is not allowed"),
    (["optimizer=momentum", "optimizer.tuned_lr=inf"], "optimizer.tuned_lr=inf is not allowed"),
    (["optimizer=momentum", "optimizer.momentum=1"], "optimizer.momentum=1.0 is not allowed: it must be in [0, 1)"),
    (["optimizer=momentum", "optimizer.dampening=2"], "optimizer.dampening=2.0 is not allowed: it must be in [0, 1]"),
    (["optimizer=momentum", "optimizer.weight_decay=inf"], "optimizer.weight_decay=inf is not allowed"),
    (["optimizer.name=adamax"], "optimizer.name=adamax is not allowed"),
    (["optimizer.default_lr=-1e-3"], "optimizer.default_lr=-0.001 is not allowed"),
    (["optimizer.tuned_lr=0"], "optimizer.tuned_lr=0.0 is not allowed"),
    (["optimizer.beta1=-0.1"], "optimizer.beta1=-0.1 is not allowed: it must be in [0, 1)"),
    (["optimizer.beta2=1.0"], "optimizer.beta2=1.0 is not allowed: it must be in [0, 1)"),
    (["optimizer.eps=0"], "optimizer.eps=0.0 is not allowed: it must be a finite number > 0"),
    (["optimizer.eps=inf"], "optimizer.eps=inf is not allowed"),
    (["optimizer.weight_decay=nan"], "optimizer.weight_decay=nan is not allowed"),
    (["optimizer=rmsprop", "optimizer.name=rms"], "optimizer.name=rms is not allowed"),
    (["optimizer=rmsprop", "optimizer.default_lr=0"], "optimizer.default_lr=0.0 is not allowed"),
    (["optimizer=rmsprop", "optimizer.tuned_lr=0"], "optimizer.tuned_lr=0.0 is not allowed"),
    (["optimizer=rmsprop", "optimizer.alpha=1"], "optimizer.alpha=1.0 is not allowed: it must be in [0, 1)"),
    (["optimizer=rmsprop", "optimizer.eps=-1"], "optimizer.eps=-1.0 is not allowed"),
    (["optimizer=rmsprop", "optimizer.momentum=-0.5"], "optimizer.momentum=-0.5 is not allowed"),
    (["optimizer=rmsprop", "optimizer.weight_decay=-1"], "optimizer.weight_decay=-1.0 is not allowed"),
    # ------------------------------------------------------------------ schedule
    (["schedule.name=cosine"], "schedule.name=cosine is not allowed"),
    (["schedule=cosine", "schedule.name=constant"], "schedule.name=constant is not allowed"),
    (["schedule=cosine", "schedule.min_lr_fraction=1.5"], "schedule.min_lr_fraction=1.5 is not allowed"),
    (["schedule=inverse_sqrt", "schedule.name=rsqrt"], "schedule.name=rsqrt is not allowed"),
    (["schedule=inverse_sqrt", "schedule.timescale_steps=0"], "schedule.timescale_steps=0 is not allowed"),
    # ------------------------------------------------------------------ tracker
    (["tracker=local", "tracker.name=wandb"], "tracker.name=wandb is not allowed"),
    (["tracker=local", "tracker.progress=loud"], "tracker.progress=loud is not allowed: choose one of auto"),
    (["tracker.name=mlflow"], "tracker.name=mlflow is not allowed"),
    (["tracker.progress=loud"], "tracker.progress=loud is not allowed"),
    (["tracker.project="], "tracker.project= is not allowed: a W&B project is 1 to 128 characters"),
    (["tracker.project=a/b"], "tracker.project=a/b is not allowed"),
    (["tracker.entity=my team"], "tracker.entity=my team is not allowed"),
    (["tracker.mode=cloud"], "tracker.mode=cloud is not allowed: choose offline, online or disabled"),
    (["tracker.log_every=0"], "tracker.log_every=0 is not allowed: it must be >= 1"),
    (["tracker.flush_every_s=-1"], "tracker.flush_every_s=-1.0 is not allowed"),
    (["tracker.init_timeout_s=0"], "tracker.init_timeout_s=0.0 is not allowed"),
    (["tracker.init_timeout_s=inf"], "tracker.init_timeout_s=inf is not allowed"),  # would wait forever
    # ------------------------------------------------------------------ skew
    (["skew.name=zipf"], "skew.name=zipf is not allowed"),
    (["skew=cluster", "skew.steps=-1"], "skew.steps=-1 is not allowed: it must be an integer >= 0"),
    (["skew=cluster", "skew.group=4"], "skew.group=4 is not allowed with data=clusters: its groups are 0 .. 3"),
    (["skew=cluster", "skew.strength=0"], "skew.strength=0.0 is not allowed: it must be in (0, 1]"),
    (["skew=spurious", "skew.cue_strength=-1"], "skew.cue_strength=-1.0 is not allowed: it must be a finite"),
    (["skew=spurious", "skew.cue_after=gone"], "skew.cue_after=gone is not allowed: choose one of kept, removed"),
    (["skew=cluster", "skew.recovery_tolerance=0"], "skew.recovery_tolerance=0.0 is not allowed"),
    # ------------------------------------------------------------------ probes
    (["probes.name=some"], "probes.name=some is not allowed"),
    (["probes=all", "probes.update_ratio_every=-1"], "probes.update_ratio_every=-1 is not allowed"),
    (["probes=all", "probes.second_moment_every=-1"], "probes.second_moment_every=-1 is not allowed"),
    (["probes=all", "probes.second_moment_batches=0"], "probes.second_moment_batches=0 is not allowed"),
    (["probes=all", "probes.sharpness_every=-1"], "probes.sharpness_every=-1 is not allowed"),
    (["probes=all", "probes.sharpness_iters=0"], "probes.sharpness_iters=0 is not allowed"),
    (["probes=all", "probes.sharpness_examples=0"], "probes.sharpness_examples=0 is not allowed"),
    (["probes=all", "probes.dead_relu_every=-1"], "probes.dead_relu_every=-1 is not allowed"),
    # ------------------------------------------------------------- the user's parts (docs/workloads.md)
    (["model=custom", "model.target=a.b:C", "model.name=a/b"], "model.name=a/b is not allowed: a name is letters"),
    (["model=custom", "model.target=not-a-path"], "model.target=not-a-path is not allowed: give an import path"),
    (["model=custom", "model.target=a.b:C", "+model.args.a-b=1"], "argument name 'a-b' is not a Python identifier"),
    (["data=npz", "data.path=x.npz", "data.name=mine"], "data.name=mine is not allowed: the name comes with"),
    (["data=npz", "data.path="], "data.path= is not allowed: give the .npz file"),
    (["data=npz", "data.path=x.npz", "data.task=ranking"], "data.task=ranking is not allowed: choose one of auto"),
    (["data=npz", "data.path=x.npz", "data.eval_fraction=1.5"], "data.eval_fraction=1.5 is not allowed"),
    (["data=npz", "data.path=x.npz", "data.seed=-1"], "data.seed=-1 is not allowed"),
    (["data=custom", "data.target=a.b:c", "data.name="], "data.name= is not allowed: a name is letters"),
    (["data=custom", "data.target=a..b"], "data.target=a..b is not allowed: give an import path"),
    (["data=custom", "data.target=a.b:c", "+data.args.a-b=1"], "argument name 'a-b' is not a Python identifier"),
    (["data=custom", "data.target=a.b:c", "data.task=ranking"], "data.task=ranking is not allowed"),
    (["optimizer=custom", "optimizer.target=a.B", "optimizer.name=my opt"], "optimizer.name=my opt is not allowed"),
    (["optimizer=custom", "optimizer.target=Adagrad"], "optimizer.target=Adagrad is not allowed: give an import"),
    (["optimizer=custom", "optimizer.target=a.B", "+optimizer.args.lr=0.1"], "it holds lr, which ablate passes itself"),
    (["optimizer=custom", "optimizer.target=a.B", "optimizer.default_lr=0"], "optimizer.default_lr=0.0 is not"),
    (["optimizer=custom", "optimizer.target=a.B", "optimizer.tuned_lr=-1"], "optimizer.tuned_lr=-1.0 is not"),
    (["schedule=custom", "schedule.target=a.f", "schedule.name=a b"], "schedule.name=a b is not allowed"),
    (["schedule=custom", "schedule.target=f"], "schedule.target=f is not allowed: give an import path"),
    (
        ["schedule=custom", "schedule.target=a.f", "+schedule.args.x-y=1"],
        "argument name 'x-y' is not a Python identifier",
    ),
]


def _is_bool(kind: object) -> bool:
    return kind is bool or kind == "bool"


def checked_fields() -> list[tuple[str, type, str, typing.Any]]:
    """(group or "", schema, field name, type) of every field that needs a range check: all but booleans (their
    type is their range) and the group slots of Config (their options are checked by name)."""
    out: list[tuple[str, type, str, typing.Any]] = []
    schemas: list[tuple[str, type]] = [("", Config)]
    for group, options in GROUPS.items():
        for schema in dict.fromkeys(options.values()):
            schemas.append((group, schema))
    for group, schema in schemas:
        hints = typing.get_type_hints(schema)
        for f in fields(schema):
            if _is_bool(hints[f.name]) or (schema is Config and f.name in GROUPS):
                continue
            out.append((group, schema, f.name, hints[f.name]))
    return out


def context(group: str, schema: type) -> list[str]:
    """Overrides that select an option of ``group`` with ``schema`` (and what it composes with)."""
    if not group:
        return []
    option = next(o for o, s in GROUPS[group].items() if s is schema)
    chosen = f"{group}={option}"
    return [chosen, *PARTNER.get(chosen, [])]


DEFAULTS = default_options()


def row_key(overrides: list[str]) -> str:
    """The field a row's last override sets: ``+model.args.a-b=1`` sets ``model.args`` (the target's arguments)."""
    key = overrides[-1].partition("=")[0].lstrip("+")
    if key.count(".") >= 2 and key.split(".")[1] == "args":
        key = ".".join(key.split(".")[:2])
    return key


def schema_of_row(overrides: list[str]) -> tuple[str, type, str]:
    """(group, schema, field) a table row tests: its last override, with the options its others choose."""
    group, _, name = row_key(overrides).rpartition(".")
    if not group:
        return "", Config, name
    chosen = dict(DEFAULTS)
    for o in overrides[:-1]:
        k, _, v = o.partition("=")
        if k in GROUPS:
            chosen[k] = v
    return group, GROUPS[group][chosen[group]], name


def assert_one_line_error(err: ConfigError, key: str) -> str:
    message = str(err)
    assert "\n" not in message, message
    assert message.startswith(f"{key}="), f"the message must start with the value {key}=...: {message}"
    assert "is not allowed" in message or "is not an option" in message, message
    assert FIX.search(message), f"the message must say how to fix it: {message}"
    return message


@pytest.mark.parametrize("overrides,expected", BAD_VALUES, ids=[" ".join(o) for o, _ in BAD_VALUES])
def test_bad_value_is_one_line_naming_value_range_and_fix(overrides: list[str], expected: str) -> None:
    with pytest.raises(ConfigError) as err:
        compose_config(overrides)
    message = assert_one_line_error(err.value, row_key(overrides))
    assert expected in message


def test_every_field_has_a_row_in_the_table() -> None:
    covered = {(group, schema, name) for group, schema, name in map(schema_of_row, (o for o, _ in BAD_VALUES))}
    missing = [
        f"{group + '.' if group else ''}{name} ({schema.__name__})"
        for group, schema, name, _ in checked_fields()
        if (group, schema, name) not in covered
    ]
    assert not missing, f"fields without a range check in BAD_VALUES (add the check and a row): {missing}"


def nonsense(kind: typing.Any) -> str:
    """A value no field of this type may take."""
    if typing.get_origin(kind) is typing.Union:  # Optional[float]
        kind = next(a for a in typing.get_args(kind) if a is not type(None))
    if kind is float:
        return "nan"
    if kind is int:
        return "-1000000"
    if typing.get_origin(kind) is list:
        return "[-1]"
    if typing.get_origin(kind) is dict:  # the arguments of a user's target: a key that is no argument name
        return "{a-b: 1}"
    return "'%??'"  # str and Any fields: no name, path or choice has these characters


@functools.cache
def composed(overrides: tuple[str, ...]) -> DictConfig:
    """The composed (unresolved) config of these overrides: composing costs ~0.2 s, so once per option."""
    compose_config(list(overrides))  # registers the schemas; the defaults of every option must be valid
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides))


@pytest.mark.parametrize(
    "group,schema,name,kind",
    checked_fields(),
    ids=[f"{g}.{n}({s.__name__})" if g else n for g, s, n, _ in checked_fields()],
)
def test_every_field_rejects_a_nonsense_value(group: str, schema: type, name: str, kind: typing.Any) -> None:
    """As ``compose_config([*context, key=value])``, with the option's composed config reused for speed."""
    key = f"{group}.{name}" if group else name
    cfg = copy.deepcopy(composed(tuple(context(group, schema))))
    value = OverridesParser.create().parse_override(f"{key}={nonsense(kind)}").value()
    OmegaConf.update(cfg, key, value, merge=False)
    with pytest.raises(ConfigError) as err:
        to_typed(cfg)
    assert_one_line_error(err.value, key)


# ---------------------------------------------------------------------------------- study names
@pytest.mark.parametrize("name", ["../../etc", "..", "a/../b", "./a", "/abs/path", "~x", "a//b", "a/", "a b", "ä"])
def test_study_names_outside_outputs_studies_are_rejected_before_hydra(name: str) -> None:
    with pytest.raises(ConfigError) as err:
        check_study_name(name)
    assert_one_line_error(err.value, "study")
    with pytest.raises(ConfigError):
        study_dir_name(name, "2024-01-01/00-00-00")  # the resolver of hydra.sweep.dir: a safety net
    with pytest.raises(ConfigError, match="study="):
        precheck_overrides(["-m", f"study='{name}'", "warmup=0,100"])


def test_plain_and_nested_study_names_are_allowed() -> None:
    for name in ("", "warmup", "adam/warmup-v2", "a.b_c-d/e"):
        check_study_name(name)
        precheck_overrides(["-m", f"study={name}", "warmup=0,100"])
    assert study_dir_name("adam/warmup", "stamp") == "adam/warmup"
    assert study_dir_name("", "stamp", smoke=True) == "smoke/stamp"


# ---------------------------------------------------------------------------------- hydra groups
@pytest.mark.parametrize(
    "override,expected",
    [
        ("hydra/launcher=nope", "hydra/launcher=nope is not an option: choose one of "),
        ("hydra/launcher=slurmm", "hydra/launcher=slurmm is not an option: did you mean 'slurm'?"),
        ("hydra/sweeper=optuna", "hydra/sweeper=optuna is not an option: choose one of ablate, basic"),
        ("hydra/lancher=local", "hydra/lancher is not a Hydra config group: did you mean 'hydra/launcher'?"),
    ],
)
def test_hydra_launcher_and_sweeper_choices_are_checked(override: str, expected: str) -> None:
    with pytest.raises(ConfigError) as err:
        precheck_overrides(["-m", override, "warmup=0,100"])
    assert expected in str(err.value) and "\n" not in str(err.value)
    if "launcher=" in override:
        for option in ("basic", "local", "slurm"):  # Hydra's core, and conf/hydra/launcher/*.yaml
            assert option in str(err.value)


def test_valid_hydra_choices_pass() -> None:
    precheck_overrides(["-m", "hydra/launcher=local", "hydra/sweeper=ablate", "warmup=0,100"])
    precheck_overrides(["-m", "hydra/launcher=basic", "hydra/launcher=slurm", "hydra/job_logging=disabled"])


# ---------------------------------------------------------------------------------- device
def test_check_device_without_cuda_and_with_too_few_devices(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    check_device("cpu")
    check_device("auto")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    for device in ("cuda", "cuda:0"):
        with pytest.raises(ConfigError) as err:
            check_device(device)
        message = assert_one_line_error(err.value, "device")
        assert "this machine has no CUDA device" in message and "use device=auto or device=cpu" in message
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    check_device("cuda")
    check_device("cuda:1")
    with pytest.raises(ConfigError) as err:
        check_device("cuda:2")
    assert "device=cuda:2 is not allowed here: this machine has 2 CUDA devices (cuda:0 .. cuda:1)" in str(err.value)


# ---------------------------------------------------------------------------------- the real command
def _absent_path() -> str:
    return f"/tmp/ablate-study-{uuid.uuid4().hex[:12]}"


ABSENT = _absent_path()


def _cuda_device_not_here() -> str:
    import torch

    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return "device=cuda" if count == 0 else f"device=cuda:{count}"


CLI_CASES = {
    "device": ([_cuda_device_not_here(), "steps=5", "tracker=local"], "is not allowed here: this machine has"),
    "study-dotdot": (["-m", "study=../../etc", "warmup=0,100", "steps=5", "tracker=local"], "study=../../etc"),
    "study-absolute": (["-m", f"study={ABSENT}", "warmup=0,100", "steps=5", "tracker=local"], f"study={ABSENT}"),
    "launcher": (["-m", "hydra/launcher=nope", "warmup=0,100", "steps=5", "tracker=local"], "hydra/launcher=nope"),
    "warmup-empty": (["-m", "warmup=", "steps=5", "tracker=local"], "warmup="),
    "warmup-ge-steps": (["-m", "warmup=0,100", "steps=50", "tracker=local", "study=x"], "warmup=100"),
    "device-in-a-study": (
        ["-m", "device=cpu," + _cuda_device_not_here().partition("=")[2], "steps=5", "tracker=local"],
        "is not allowed here: this machine has",
    ),
    "huge-grid": (["-m", "lr=range(0.001,1,0.001)", "seed=range(0,1000)", "steps=5"], "study of 999000 runs"),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CLI_CASES))
def test_cli_rejects_in_one_line_with_exit_2_and_writes_nothing(case: str, tmp_path: Path) -> None:
    args, expected = CLI_CASES[case]
    done = run_ablate(*args, cwd=tmp_path, timeout=120)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ") and expected in lines[0], lines[0]
    assert list(tmp_path.iterdir()) == [], f"a rejected command wrote {sorted(tmp_path.rglob('*'))}"
    assert not Path(ABSENT).exists()
