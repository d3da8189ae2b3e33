"""The small models studies train: the MLP here, the CNN and the Transformer in ``ablate/nets.py``."""

from __future__ import annotations

from torch import nn

from ablate.config import CNNConfig, MLPConfig, TransformerConfig
from ablate.nets import CNN, Transformer

_ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh}


class MLP(nn.Sequential):
    """``Linear -> activation`` for each hidden width, then ``Linear`` to the class logits (PyTorch init)."""

    def __init__(self, in_features: int, n_classes: int, hidden_sizes: list[int], activation: str) -> None:
        layers: list[nn.Module] = []
        width = in_features
        for hidden in hidden_sizes:
            layers += [nn.Linear(width, hidden), _ACTIVATIONS[activation]()]
            width = hidden
        layers.append(nn.Linear(width, n_classes))
        super().__init__(*layers)


def build_model(cfg: object, in_features: int, n_classes: int) -> nn.Module:
    """The model for a ``model`` config group option (parameters initialised from torch's global RNG)."""
    if isinstance(cfg, MLPConfig):
        return MLP(in_features, n_classes, list(cfg.hidden_sizes), cfg.activation)
    if isinstance(cfg, CNNConfig):
        return CNN(in_features, n_classes, list(cfg.channels))
    if isinstance(cfg, TransformerConfig):  # in_features is the sequence length, n_classes the vocabulary
        return Transformer(
            n_classes, in_features, cfg.d_model, cfg.n_heads, cfg.n_layers, cfg.norm_position, cfg.dropout
        )
    raise TypeError(f"unknown model config {cfg!r}")
