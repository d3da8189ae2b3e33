"""The small models studies train: the MLP here, the CNN and the Transformer in ``ablate/run/models/nets.py``."""

from __future__ import annotations

from torch import nn

from ablate.run.models.config import CNNConfig, MLPConfig, TransformerConfig
from ablate.run.models.nets import CNN, Transformer

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


def build_model(cfg: object, in_features: int, n_classes: int) -> nn.Module:
    """The model for a ``model`` config group option (parameters initialised from torch's global RNG)."""
    if isinstance(cfg, MLPConfig):
        return MLP(in_features, n_classes, list(cfg.hidden_sizes), cfg.activation, cfg.init_scale)
    if isinstance(cfg, CNNConfig):
        return CNN(in_features, n_classes, list(cfg.channels))
    if isinstance(cfg, TransformerConfig):  # in_features is the sequence length, n_classes the vocabulary
        return Transformer(
            n_classes,
            in_features,
            cfg.d_model,
            cfg.n_heads,
            cfg.n_layers,
            cfg.norm_position,
            cfg.dropout,
            cfg.ffn_width,
            cfg.causal,
        )
    raise TypeError(f"unknown model config {cfg!r}")
