"""Config: every option composes, and each bad input stops with a one-line message naming value and fix."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from ablate.checks import ConfigError
from ablate.cli.overrides import group_options, precheck_overrides
from ablate.config import CONF_DIR, GROUPS, run_id
from tests.conftest import make_config, run_ablate


@pytest.mark.parametrize("group", list(GROUPS))
def test_every_yaml_option_has_a_schema_and_composes(group: str) -> None:
    assert group_options(group) == sorted(GROUPS[group]), f"conf/{group}/ and config.GROUPS disagree"
    partner = {
        "model=transformer": "data=sort",
        "model=cnn": "data=digits",
        "data=sort": "model=transformer",
        "data=reverse": "model=transformer",
        "model=custom": "model.target=tests.user_parts:linear",  # the user's parts need a target (or a file)
        "data=custom": "data.target=tests.user_parts:blobs",
        "data=npz": "data.path=train.npz",
        "optimizer=custom": "optimizer.target=torch.optim.Adagrad",
        "schedule=custom": "schedule.target=tests.user_parts:step_decay",
    }
    for option in group_options(group):
        chosen = f"{group}={option}"
        config = make_config(chosen, *([partner[chosen]] if chosen in partner else []))
        assert isinstance(getattr(config, group), GROUPS[group][option])
        assert getattr(config, group).name == option


def test_lr_defaults_to_the_optimizers_default_and_can_be_set() -> None:
    assert make_config("optimizer=sgd").lr == 0.1
    assert make_config("optimizer=adam").lr == 1e-3
    assert make_config("optimizer=sgd", "lr=0.5").lr == 0.5


@pytest.mark.parametrize("option", sorted(GROUPS["optimizer"]))
def test_tuned_lr_comes_from_the_generated_file_else_the_default_rate(option: str) -> None:
    """``python -m analysis.tune --write`` writes ``conf/generated/tuned_lr/<option>.yaml``; the optimizer config
    reads it through its defaults list, and an optimizer never tuned uses its ``default_lr``."""
    target = ["optimizer.target=torch.optim.Adagrad"] if option == "custom" else []
    config = make_config(f"optimizer={option}", *target, "+sweep=warmup-lr-range", "lr_scale=4")
    generated = CONF_DIR / "generated" / "tuned_lr" / f"{option}.yaml"
    expected = OmegaConf.load(generated).tuned_lr if generated.is_file() else config.optimizer.default_lr
    assert config.optimizer.tuned_lr == expected
    assert config.lr == expected * 4  # lr: ${ablate_mul:${optimizer.tuned_lr},${lr_scale}}
    assert "tuned_lr: ${.default_lr}" in (CONF_DIR / "optimizer" / f"{option}.yaml").read_text()


@pytest.mark.parametrize(
    "args,message",
    [
        (["warmpu=100"], "unknown config key 'warmpu': did you mean 'warmup'? top-level keys are warmup,"),
        (["optimizer=adamm"], "optimizer=adamm is not an option: did you mean 'adam'? choose one of adam, adamw,"),
        (["-m", "optimizer=sgd,adamm"], "optimizer=adamm is not an option"),
        (["optimizer.betaa2=0.9"], "unknown config key 'optimizer.betaa2' for optimizer=adam: did you mean 'beta2'?"),
        (["optimizer=sgd", "optimizer.beta2=0.9"], "unknown config key 'optimizer.beta2' for optimizer=sgd"),
        (["-m", "optimizer=adam,sgd", "optimizer.beta2=0.9"], "'optimizer.beta2' for optimizer=sgd"),
        (["modle=mlp"], "unknown config key 'modle': did you mean 'model'?"),
        (["lr=abc"], "lr=abc is not allowed: lr takes a number"),
        (["steps=1.5"], "steps=1.5 is not allowed: steps takes an integer"),
        (["-m", "seed=0,x"], "seed=x is not allowed: seed takes an integer"),
    ],
)
def test_precheck_rejects_unknown_keys_options_and_types(args: list[str], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        precheck_overrides(args)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_precheck_accepts_valid_overrides() -> None:
    precheck_overrides(["-m", "warmup=0,100", "optimizer=sgd,adam", "optimizer.weight_decay=0.1", "hydra.verbose=true"])
    precheck_overrides(
        ["optimizer=momentum", "optimizer.nesterov=true", "schedule=cosine", "schedule.min_lr_fraction=0"]
    )


@pytest.mark.parametrize(
    "overrides,message",
    [
        (["warmup=-5"], "warmup=-5 is not allowed: it must be an integer number of steps >= 0, or auto"),
        (["warmup=1000"], "warmup=1000 is not allowed with steps=1000: warmup counts inside the total"),
        (["warmup=600", "steps=500"], "lower warmup or raise steps above 600"),
        (["warmup=auto"], "warmup=auto (2000 steps) is not allowed with steps=1000"),
        (["lr=0"], "lr=0.0 is not allowed: the peak learning rate must be a finite number > 0"),
        (["lr=-0.1"], "lr=-0.1 is not allowed"),
        (["batch_size=0"], "batch_size=0 is not allowed: it must be an integer >= 1"),
        (["batch_size=9000"], "batch_size=9000 is not allowed with data=clusters: its training split has 8192"),
        (["batch_size=half"], "batch_size=half is not allowed: it must be an integer >= 1 or full"),
        (["diverge_window=0"], "diverge_window=0 is not allowed"),
        (["untrained_margin=1.5"], "untrained_margin=1.5 is not allowed"),
        (["lr_sharpness_multiple=-1"], "lr_sharpness_multiple=-1.0 is not allowed"),
        (["model.init_scale=0"], "model.init_scale=0.0 is not allowed"),
        (["data=teacher", "model=cnn"], "model=cnn is not allowed with data=teacher"),
        (
            ["model=transformer", "data=sort", "model.causal=true"],
            "model.causal=true is not allowed with data.format=aligned",
        ),
        (["skew.cue_after=gone"], "skew.cue_after=gone is not allowed: choose one of kept, removed, shuffled"),
        (["data=teacher", "skew=spurious"], "skew=spurious is not allowed with data=teacher"),
        (["data=digits", "batch_size=2000"], "batch_size=2000 is not allowed with data=digits: its training split"),
        (["steps=0"], "steps=0 is not allowed"),
        (["eval_every=0"], "eval_every=0 is not allowed"),
        (["warmup_shape=cosine"], "warmup_shape=cosine is not allowed: choose one of linear, constant, exponential"),
        (["device=tpu"], "device=tpu is not allowed: choose auto, cpu, cuda or cuda:<index>"),
        (["optimizer.beta2=1.0"], "optimizer.beta2=1.0 is not allowed: it must be in [0, 1)"),
        (["optimizer=momentum", "optimizer.nesterov=true", "optimizer.dampening=0.1"], "set optimizer.dampening=0"),
        (["model.activation=swish"], "model.activation=swish is not allowed: choose one of relu, gelu, tanh"),
        (["tracker.progress=loud"], "tracker.progress=loud is not allowed"),
    ],
)
def test_validation_messages(overrides: list[str], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        make_config(*overrides)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_warmup_shape_none_ignores_warmup_auto_and_single_group_skew_is_an_error() -> None:
    assert make_config("optimizer=sgd", "warmup=auto", "warmup_shape=none").warmup == "auto"
    with pytest.raises(ConfigError, match="warmup=-5 is not allowed"):
        make_config("warmup=-5", "warmup_shape=none")
    with pytest.raises(ConfigError, match="skew=cluster is not allowed with data=clusters of 1 group"):
        make_config("skew=cluster", "data.clusters_per_class=1")


def test_run_id_is_stable_and_ignores_tracker_settings() -> None:
    a = run_id(make_config("warmup=100"))
    assert a == run_id(make_config("warmup=100"))
    assert a == run_id(make_config("warmup=100", "tracker.progress=off"))
    assert a != run_id(make_config("warmup=101"))
    assert a != run_id(make_config("warmup=100", "seed=1"))
    explicit = run_id(make_config("optimizer=sgd", "lr=0.1"))
    assert explicit == run_id(make_config("optimizer=sgd", "lr=0.1", "optimizer.default_lr=0.5"))


@pytest.mark.slow
def test_cli_errors_are_one_line_without_traceback_and_nothing_runs(tmp_path: Path) -> None:
    single = run_ablate("warmup=1000", cwd=tmp_path)
    assert single.returncode == 2
    assert single.stderr.strip() == (
        "error: warmup=1000 is not allowed with steps=1000: warmup counts inside the total, so it must be < steps; "
        "lower warmup or raise steps above 1000"
    )
    sweep = run_ablate("-m", "warmup=0,100,5000", cwd=tmp_path)
    assert sweep.returncode == 2
    assert "Traceback" not in sweep.stderr
    assert "error: in run [warmup=5000]: warmup=5000 is not allowed with steps=1000" in sweep.stderr
    assert "nothing was run" in sweep.stderr
    assert not list(tmp_path.rglob("result.json")), "no run may start when one grid point is invalid"
    typo = run_ablate("-m", "warmpu=0,100", cwd=tmp_path)
    assert typo.returncode == 2 and typo.stderr.count("\n") == 1 and "did you mean 'warmup'" in typo.stderr


@pytest.mark.slow
def test_help_and_cfg_job(tmp_path: Path) -> None:
    shown = run_ablate("--help", cwd=tmp_path)
    assert shown.returncode == 0
    assert "optimizer                      adam*, adamw, custom, momentum, radam, rmsprop, sgd" in shown.stdout
    assert "warmup_shape" in shown.stdout and "optimizer.beta2" in shown.stdout
    job = run_ablate("--cfg", "job", "optimizer=sgd", "warmup=10", cwd=tmp_path)
    assert job.returncode == 0
    assert "name: sgd" in job.stdout and "warmup: 10" in job.stdout
    assert not (tmp_path / "outputs").exists()
    assert CONF_DIR.is_dir()
