"""Schemas of the ``model`` config group (``conf/model/<option>.yaml``) and the checks of their own fields.

Which model may train on which data is a rule across groups: ``ablate.config.validate`` holds it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Optional

from ablate.checks import check, check_target, check_user_part, described, is_int

ACTIVATIONS = ("relu", "gelu", "tanh")


@dataclass
class MLPConfig:
    name: str = described("model family")
    hidden_sizes: list[int] = field(default_factory=lambda: [], metadata={"help": "width of each hidden layer"})
    activation: str = described("hidden activation: relu, gelu or tanh")
    init_scale: Optional[float] = described(  # noqa: UP045 (OmegaConf reads Optional, not `float | None`)
        "null: PyTorch's default init; s > 0: weights ~ N(0, s^2/fan_in), biases 0 (s=1 is LeCun normal)", None
    )

    def check(self) -> None:
        check(
            self.init_scale is None or (math.isfinite(self.init_scale) and self.init_scale > 0),
            f"model.init_scale={self.init_scale} is not allowed: it must be a number > 0 (1 = LeCun normal), or "
            "null for PyTorch's default init; e.g. model.init_scale=1",
        )
        check(
            all(is_int(h) and h >= 1 for h in self.hidden_sizes),
            f"model.hidden_sizes={self.hidden_sizes} is not allowed: widths must be integers >= 1, e.g. [128,128]",
        )
        check(
            self.activation in ACTIVATIONS,
            f"model.activation={self.activation} is not allowed: choose one of {', '.join(ACTIVATIONS)}",
        )


@dataclass
class TransformerConfig:
    name: str = described("model family")
    d_model: int = described("width of the residual stream")
    n_heads: int = described("attention heads (must divide d_model)")
    n_layers: int = described("residual blocks")
    norm_position: str = described("pre (x + f(LN(x))) or post (LN(x + f(x)), the original) layer norm")
    ffn_width: int = described(
        "hidden units of each block's feed-forward layer (the original Transformer: 4 x d_model)"
    )
    causal: bool = described("causal self-attention (a decoder: position i sees positions <= i); needs data.format=lm")
    dropout: float = described("dropout probability in attention and MLP")

    def check(self) -> None:
        check(
            self.norm_position in ("pre", "post"),
            f"model.norm_position={self.norm_position} is not allowed: choose pre or post",
        )
        check(self.d_model >= 1, f"model.d_model={self.d_model} is not allowed: it must be >= 1, e.g. model.d_model=64")
        check(
            self.n_heads >= 1 and self.d_model % self.n_heads == 0,
            f"model.n_heads={self.n_heads} is not allowed with model.d_model={self.d_model}: heads must divide "
            "d_model, e.g. model.n_heads=4 with model.d_model=64",
        )
        check(
            self.n_layers >= 1, f"model.n_layers={self.n_layers} is not allowed: it must be >= 1, e.g. model.n_layers=2"
        )
        check(
            self.ffn_width >= 1, f"model.ffn_width={self.ffn_width} is not allowed: it must be >= 1, e.g. 4 x d_model"
        )
        check(
            0 <= self.dropout < 1,
            f"model.dropout={self.dropout} is not allowed: it must be in [0, 1), e.g. model.dropout=0",
        )


@dataclass
class CNNConfig:
    name: str = described("model family")
    channels: list[int] = field(default_factory=lambda: [], metadata={"help": "channels of the two 3x3 convolutions"})

    def check(self) -> None:
        check(
            len(self.channels) == 2 and all(is_int(ch) and ch >= 1 for ch in self.channels),
            f"model.channels={self.channels} is not allowed: give two channel counts >= 1, e.g. [16,32]",
        )


MODELS: dict[str, type] = {"mlp": MLPConfig, "cnn": CNNConfig, "transformer": TransformerConfig}
"""Option of the ``model`` group -> its schema."""


@dataclass
class CustomModelConfig:
    """The user's model by import path: ``model=custom model.target=mypkg.nets:MyNet model.args.width=64``, or a
    config file ``conf/model/<name>.yaml`` with ``_target_: mypkg.nets.MyNet`` and the arguments beside it."""

    name: str = described("the model's name in run labels and W&B (custom, or the name its config file gives)")
    target: str = described("import path of the model factory (a class or function): module:name or module.name")
    args: dict[str, Any] = field(
        default_factory=dict, metadata={"help": "keyword arguments of the factory (it also gets spec=DataSpec)"}
    )

    def check(self) -> None:
        check_target("model.target", self.target, "mypkg.nets:MyNet")
        check_user_part("model", self.name, self.args)


MODELS["custom"] = CustomModelConfig
