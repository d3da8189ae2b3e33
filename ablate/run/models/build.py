"""Building a run's model: the built-in factories (the MLP here; the CNN and the Transformer in ``nets.py``) and
the user's, by import path, through one function, ``build_model(cfg, spec)``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields
from typing import Any

from torch import nn

from ablate.checks import ConfigError, first_line
from ablate.run.imports import accepted, resolve
from ablate.run.models.config import CNNConfig, CustomModelConfig, MLPConfig, TransformerConfig
from ablate.run.models.nets import CNN, Transformer
from ablate.run.workload import DataSpec

_ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh}


class MLP(nn.Sequential):
    """``Linear -> activation`` for each hidden width, then ``Linear`` to the outputs (class logits, or 1 value).

    Init: PyTorch's default (``init_scale=None``), or weights ``~ N(0, s^2 / fan_in)`` and biases 0 for
    ``init_scale = s`` (``s = 1`` is LeCun normal; larger ``s`` starts sharper, the knob of the curvature testbed).
    """

    def __init__(
        self,
        in_features: int,
        n_classes: int,
        hidden_sizes: list[int],
        activation: str,
        init_scale: float | None = None,
    ) -> None:
        layers: list[nn.Module] = []
        width = in_features
        for hidden in hidden_sizes:
            layers += [nn.Linear(width, hidden), _ACTIVATIONS[activation]()]
            width = hidden
        layers.append(nn.Linear(width, n_classes))
        super().__init__(*layers)
        if init_scale is not None:
            for layer in layers:
                if isinstance(layer, nn.Linear):
                    nn.init.normal_(layer.weight, 0.0, init_scale / layer.in_features**0.5)
                    nn.init.zeros_(layer.bias)


def mlp(spec: DataSpec, hidden_sizes: list[int], activation: str, init_scale: float | None = None) -> nn.Module:
    """``model=mlp``: features in, one output per class (1 for regression)."""
    return MLP(spec.n_features, spec.n_outputs, list(hidden_sizes), activation, init_scale)


def cnn(spec: DataSpec, channels: list[int]) -> nn.Module:
    """``model=cnn``: 8x8 images, flattened to 64 features."""
    return CNN(spec.n_features, spec.n_outputs, list(channels))


def transformer(
    spec: DataSpec,
    d_model: int,
    n_heads: int,
    n_layers: int,
    norm_position: str,
    dropout: float,
    ffn_width: int,
    causal: bool,
) -> nn.Module:
    """``model=transformer``: token ids ``[n, L]`` in, one distribution over the vocabulary per position out."""
    seq_len = spec.input_shape[0]
    return Transformer(spec.n_outputs, seq_len, d_model, n_heads, n_layers, norm_position, dropout, ffn_width, causal)


BUILT_IN: dict[type, Callable[..., nn.Module]] = {MLPConfig: mlp, CNNConfig: cnn, TransformerConfig: transformer}
"""Each built-in model's schema and factory: they go through the same path as the user's models."""


def model_factory(cfg: Any) -> tuple[Callable[..., nn.Module], dict[str, Any], str]:
    """The factory of a ``model`` config, its keyword arguments, and the key that names it (for messages)."""
    if isinstance(cfg, CustomModelConfig):
        return resolve("model.target", cfg.target), dict(cfg.args), f"model.target={cfg.target}"
    factory = BUILT_IN.get(type(cfg))
    if factory is None:
        raise TypeError(f"unknown model config {cfg!r}")
    args = {f.name: getattr(cfg, f.name) for f in fields(cfg) if f.name != "name"}
    return factory, args, f"model={cfg.name}"


def build_model(cfg: Any, spec: DataSpec) -> nn.Module:
    """The model of a ``model`` config for data described by ``spec`` (parameters from torch's global RNG).

    The factory is called with its arguments and, when it takes one, ``spec``; an error it raises, or a result
    that is not an ``nn.Module``, is a ConfigError of one line that names the factory.
    """
    factory, args, key = model_factory(cfg)
    try:
        model = factory(**args, **accepted(factory, {"spec": spec}))
    except ConfigError:
        raise
    except Exception as err:
        message = first_line(err)
        raise ConfigError(f"{key} raised {type(err).__name__} while building the model: {message}") from None
    if not isinstance(model, nn.Module):
        raise ConfigError(f"{key} returned {type(model).__name__}, not a torch.nn.Module: return the model itself")
    return model
