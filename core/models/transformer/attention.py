"""Multi-head attention with positional embeddings added to query/key and a residual, and the
transformer feed-forward block (MMCV's `MultiheadAttention` and `FFN`)."""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from det.core.config.build import build
from det.core.models.layers import build_act


def make(cls: type, cfg: dict | None, key: str, **defaults: Any) -> Any:
    """Construct `cls(**cfg)` for an untyped sub-config; unknown keys are errors naming `key`."""
    return build({**(cfg or {}), "type": cls.__name__}, {cls.__name__: cls}, key, **defaults)


class MultiheadAttention(nn.Module):
    """identity + attn(query + query_pos, key + key_pos, value); batch-first (B, N, C)."""

    def __init__(self, embed_dims: int, num_heads: int, attn_drop: float = 0.0, proj_drop: float = 0.0,
                 dropout: float = 0.0) -> None:
        super().__init__()
        self.embed_dims, self.num_heads = embed_dims, num_heads
        self.attn = nn.MultiheadAttention(embed_dims, num_heads, dropout=attn_drop or dropout, batch_first=True)
        self.proj_drop = nn.Dropout(proj_drop)
        self.dropout_layer = nn.Dropout(dropout)  # MMCV's legacy `dropout` drops attention and output

    def forward(self, query: torch.Tensor, key: torch.Tensor | None = None, value: torch.Tensor | None = None,
                query_pos: torch.Tensor | None = None, key_pos: torch.Tensor | None = None,
                attn_mask: torch.Tensor | None = None, key_padding_mask: torch.Tensor | None = None,
                **_: Any) -> torch.Tensor:
        key = query if key is None else key
        value = key if value is None else value
        if key_pos is None and query_pos is not None and query_pos.shape == key.shape:
            key_pos = query_pos
        q = query if query_pos is None else query + query_pos
        k = key if key_pos is None else key + key_pos
        out = self.attn(q, k, value, attn_mask=attn_mask, key_padding_mask=key_padding_mask, need_weights=False)[0]
        return query + self.dropout_layer(self.proj_drop(out))


class FFN(nn.Module):
    """(Linear -> act -> dropout) x (num_fcs - 1) -> Linear -> dropout, plus the input when
    `add_identity`. Parameters `layers.0.0`, ..., `layers.{num_fcs-1}` as MMCV."""

    def __init__(self, embed_dims: int = 256, feedforward_channels: int = 1024, num_fcs: int = 2,
                 act_cfg: dict | None = {"type": "ReLU"}, ffn_drop: float = 0.0, add_identity: bool = True) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = embed_dims
        for _ in range(num_fcs - 1):
            layers.append(nn.Sequential(nn.Linear(width, feedforward_channels), build_act(act_cfg), nn.Dropout(ffn_drop)))
            width = feedforward_channels
        layers += [nn.Linear(width, embed_dims), nn.Dropout(ffn_drop)]
        self.layers = nn.Sequential(*layers)
        self.add_identity = add_identity

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.layers(x)
        return x + out if self.add_identity else out
