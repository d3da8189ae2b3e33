"""Two more small models: a Transformer encoder for token sequences and a CNN for 8x8 images."""

from __future__ import annotations

import torch
from torch import nn

NORM_POSITIONS = ("pre", "post")


class Block(nn.Module):
    """One residual block: multi-head self-attention (bidirectional, or causal: position ``i`` attends to
    positions ``<= i``), then an MLP ``d -> ffn_width -> d`` (GELU; the original Transformer's ``4d`` by default).

    ``pre``:  ``x = x + attn(LN(x)); x = x + mlp(LN(x))`` (the residual stream is never normalised).
    ``post``: ``x = LN(x + attn(x)); x = LN(x + mlp(x))`` (every block's output is normalised per token).
    ``attn`` and ``mlp`` end in dropout on their output.
    """

    def __init__(
        self,
        d_model: int,
        n_heads: int,
        norm_position: str,
        dropout: float,
        ffn_width: int | None = None,
        causal: bool = False,
    ) -> None:
        super().__init__()
        if norm_position not in NORM_POSITIONS:
            raise ValueError(f"norm_position must be one of {', '.join(NORM_POSITIONS)}, got {norm_position!r}")
        self.norm_position = norm_position
        self.causal = causal
        width = 4 * d_model if ffn_width is None else ffn_width
        self.attn = nn.MultiheadAttention(d_model, n_heads, dropout=dropout, batch_first=True)
        self.mlp = nn.Sequential(nn.Linear(d_model, width), nn.GELU(), nn.Linear(width, d_model), nn.Dropout(dropout))
        self.attn_dropout = nn.Dropout(dropout)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)

    def _attend(self, x: torch.Tensor) -> torch.Tensor:
        if self.causal:
            length = x.shape[-2]
            mask = torch.ones(length, length, dtype=torch.bool, device=x.device).triu(1)  # True: may not attend
            out, _ = self.attn(x, x, x, need_weights=False, attn_mask=mask, is_causal=True)
        else:
            out, _ = self.attn(x, x, x, need_weights=False)
        return self.attn_dropout(out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.norm_position == "pre":
            x = x + self._attend(self.norm1(x))
            return x + self.mlp(self.norm2(x))
        x = self.norm1(x + self._attend(x))
        return self.norm2(x + self.mlp(x))


class Transformer(nn.Module):
    """Per-position token classifier: ``h_0 = E[x] + P``, ``n_layers`` :class:`Block` s, a linear head.

    ``E`` is a token embedding ``vocab_size -> d_model``, ``P`` a learned positional embedding of ``seq_len``
    positions (both ``N(0, 1)`` at init, PyTorch's embedding default); attention is bidirectional, or causal.
    Pre-LN: ``logits = W LN(h_L) + b`` (a final LayerNorm); post-LN: ``logits = W h_L + b`` (``h_L`` is already
    normalised). Input int64 ``[batch, seq_len]``, output logits ``[batch, seq_len, vocab_size]``.

    Why it matters for warmup (Xiong et al. 2020, "On Layer Normalization in the Transformer Architecture"):
    at init post-LN has large gradients near the output layers and needs a warmup with Adam to train stably;
    pre-LN's gradients are well-behaved, so it trains without one.
    """

    def __init__(
        self,
        vocab_size: int,
        seq_len: int,
        d_model: int,
        n_heads: int,
        n_layers: int,
        norm_position: str,
        dropout: float = 0.0,
        ffn_width: int | None = None,
        causal: bool = False,
    ) -> None:
        super().__init__()
        if d_model % n_heads != 0:
            raise ValueError(f"d_model={d_model} must be divisible by n_heads={n_heads}")
        self.seq_len = seq_len
        self.norm_position = norm_position
        self.token_embedding = nn.Embedding(vocab_size, d_model)
        self.position_embedding = nn.Embedding(seq_len, d_model)
        self.embedding_dropout = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(
            Block(d_model, n_heads, norm_position, dropout, ffn_width, causal) for _ in range(n_layers)
        )
        self.final_norm: nn.Module = nn.LayerNorm(d_model) if norm_position == "pre" else nn.Identity()
        self.head = nn.Linear(d_model, vocab_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.seq_len:
            raise ValueError(f"expected sequences of length {self.seq_len}, got shape {tuple(x.shape)}")
        positions = torch.arange(self.seq_len, device=x.device)
        h = self.embedding_dropout(self.token_embedding(x) + self.position_embedding(positions))
        for block in self.blocks:
            h = block(h)
        return self.head(self.final_norm(h))


class CNN(nn.Module):
    """Images given flattened ``[batch, image_size**2]`` (scikit-learn's 8x8 digits), one channel.

    ``[B, 1, s, s] -> conv3x3(c1) -> ReLU -> conv3x3(c2) -> ReLU -> maxpool2x2 -> flatten -> Linear``: the
    convolutions keep ``s x s`` (padding 1), the pool halves it, so the linear layer sees
    ``c2 * (s // 2)**2`` features and outputs ``[B, n_classes]`` logits (PyTorch init).
    """

    def __init__(self, in_features: int, n_classes: int, channels: list[int], image_size: int = 8) -> None:
        super().__init__()
        if in_features != image_size**2:
            raise ValueError(
                f"CNN needs {image_size}x{image_size} images flattened to {image_size**2} features, got "
                f"in_features={in_features}; use data=digits or set image_size"
            )
        if len(channels) != 2:
            raise ValueError(f"CNN takes two conv widths, channels=[c1, c2], got {list(channels)}")
        c1, c2 = channels
        self.image_size = image_size
        self.features = nn.Sequential(
            nn.Conv2d(1, c1, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.Conv2d(c1, c2, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.head = nn.Linear(c2 * (image_size // 2) ** 2, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        images = x.reshape(-1, 1, self.image_size, self.image_size)
        return self.head(self.features(images).flatten(1))
