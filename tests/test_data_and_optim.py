"""Datasets, batch order and optimizers: deterministic, paired across factors, the real torch classes."""

from __future__ import annotations

import pytest
import torch

from ablate.run.data.build import build_dataset
from ablate.run.data.config import DIGITS_TOTAL
from ablate.run.data.samplers import IIDBatchSampler
from ablate.run.models.build import MLP
from ablate.run.optim.build import build_optimizer, set_lr
from ablate.run.train import build
from tests.conftest import make_config

CPU = torch.device("cpu")


def test_sampler_is_a_deterministic_function_of_seed_and_step() -> None:
    a, b = IIDBatchSampler(100, 32, seed=3), IIDBatchSampler(100, 32, seed=3)
    forward = [a.batch(t).tolist() for t in range(12)]
    backward = [b.batch(t).tolist() for t in reversed(range(12))][::-1]  # order of asking does not matter
    assert forward == backward
    assert forward != [IIDBatchSampler(100, 32, seed=4).batch(t).tolist() for t in range(12)]


def test_sampler_epochs_are_permutations_without_repeats() -> None:
    s = IIDBatchSampler(100, 32, seed=0)
    assert s.batches_per_epoch == 3
    for epoch in range(3):
        seen = torch.cat([s.batch(epoch * 3 + i) for i in range(3)])
        assert len(seen) == 96 and len(set(seen.tolist())) == 96  # 4 examples wait for the next shuffle
    assert s.batch(0).tolist() != s.batch(3).tolist()  # a fresh shuffle each epoch


def test_batches_are_identical_across_optimizers_and_warmups() -> None:
    """The batch stream of a seed depends on nothing the optimizer or warmup does: runs can be paired."""
    streams = []
    for overrides in (("optimizer=adam", "warmup=0"), ("optimizer=sgd", "warmup=100"), ("optimizer=rmsprop",)):
        parts = build(make_config(*overrides), CPU)
        streams.append([parts.sampler.batch(t).tolist() for t in range(200)])
    assert streams[0] == streams[1] == streams[2]


def test_clusters_are_generated_from_data_seed_only() -> None:
    a = build_dataset(make_config("seed=0").data, CPU)
    b = build_dataset(make_config("seed=5").data, CPU)
    c = build_dataset(make_config("data.seed=1").data, CPU)
    assert torch.equal(a.train_x, b.train_x) and torch.equal(a.eval_y, b.eval_y)
    assert not torch.equal(a.train_x, c.train_x)
    assert a.train_x.shape == (8192, 32) and a.eval_x.shape == (2048, 32)
    assert set(a.train_group.tolist()) == set(range(4))  # group = cluster index within its class
    for g in range(4):  # every group spans all labels
        assert set(a.train_y[a.train_group == g].tolist()) == set(range(10))
    assert set(a.train_y.tolist()) == set(range(10))


def test_digits_split_is_stratified_and_standardised() -> None:
    d = build_dataset(make_config("data=digits").data, CPU)
    assert d.n_train + len(d.eval_y) == DIGITS_TOTAL and len(d.eval_y) == round(DIGITS_TOTAL * 0.25)
    assert d.n_features == 64 and d.n_classes == 10
    counts = torch.bincount(d.eval_y, minlength=10)
    assert counts.min() >= 43 and counts.max() <= 47  # about a quarter of each class (~180 per class)
    assert d.train_x.mean(0).abs().max() < 1e-4


def test_default_model_is_the_configured_mlp() -> None:
    model = build(make_config("model.hidden_sizes=[16,8]", "model.activation=tanh"), CPU).model
    assert isinstance(model, MLP)
    shapes = [tuple(p.shape) for p in model.parameters()]
    assert shapes == [(16, 32), (16,), (8, 16), (8,), (10, 8), (10,)]
    assert isinstance(model[1], torch.nn.Tanh)


@pytest.mark.parametrize(
    "overrides,cls,expected",
    [
        (("optimizer=sgd",), torch.optim.SGD, {"momentum": 0.0, "nesterov": False}),
        (("optimizer=momentum", "optimizer.nesterov=true"), torch.optim.SGD, {"momentum": 0.9, "nesterov": True}),
        (("optimizer=adam", "optimizer.beta2=0.99"), torch.optim.Adam, {"betas": (0.9, 0.99), "eps": 1e-8}),
        (("optimizer=adamw",), torch.optim.AdamW, {"weight_decay": 0.01}),
        (("optimizer=rmsprop", "optimizer.centered=true"), torch.optim.RMSprop, {"alpha": 0.99, "centered": True}),
        (("optimizer=radam",), torch.optim.RAdam, {"betas": (0.9, 0.999)}),
    ],
)
def test_optimizers_are_the_real_torch_classes(overrides, cls, expected) -> None:
    config = make_config(*overrides)
    opt = build_optimizer(config.optimizer, [torch.nn.Parameter(torch.zeros(3))], config.lr)
    assert type(opt) is cls
    for key, value in expected.items():
        assert opt.param_groups[0][key] == value
    assert set_lr(opt, 0.123) == 0.123 and all(g["lr"] == 0.123 for g in opt.param_groups)


def test_models_match_their_data(tmp_path) -> None:
    from ablate.checks import ConfigError
    from ablate.record.runner import execute
    from analysis.load import read_metrics, read_result

    with pytest.raises(ConfigError, match="model=transformer is not allowed with data=clusters: .*set data=sort"):
        make_config("model=transformer")
    with pytest.raises(ConfigError, match="model=cnn is not allowed with data=clusters: .*set data=digits"):
        make_config("model=cnn")
    with pytest.raises(ConfigError, match="model=mlp is not allowed with data=sort: .*set model=transformer"):
        make_config("data=sort")
    with pytest.raises(ConfigError, match="skew=spurious is not allowed with data=sort"):
        make_config("model=transformer", "data=sort", "skew=spurious")
    small = ("steps=20", "eval_every=10", "tracker.progress=off", "skew.steps=10")
    for name, overrides in {
        "transformer": (
            "model=transformer",
            "data=sort",
            "data.n_train=256",
            "model.norm_position=post",
            "skew=cluster",
        ),
        "cnn": ("model=cnn", "data=digits", "skew=sorted"),
    }.items():
        config = make_config(*small, *overrides)
        assert execute(config, tmp_path / name, name, [], {}) == "completed"
        final = read_metrics(tmp_path / name)[-1]
        assert 0 <= final["eval/acc"] <= 1 and "eval/early/acc" in final and "eval/rest/loss" in final
        assert read_result(tmp_path / name)["summary"]["skew_gap_end"] is not None
