"""DETR's post-norm transformer encoder and decoder (MMDetection's DetrTransformer*)."""
from __future__ import annotations

import torch
from torch import nn

from det.core.models.transformer.attention import FFN, MultiheadAttention, make


class DetrTransformerEncoderLayer(nn.Module):
    def __init__(self, self_attn_cfg: dict | None = None, ffn_cfg: dict | None = None) -> None:
        super().__init__()
        self.self_attn = make(MultiheadAttention, self_attn_cfg or {"embed_dims": 256, "num_heads": 8}, "self_attn_cfg")
        self.embed_dims = self.self_attn.embed_dims
        self.ffn = make(FFN, ffn_cfg, "ffn_cfg")
        self.norms = nn.ModuleList(nn.LayerNorm(self.embed_dims) for _ in range(2))

    def forward(self, query: torch.Tensor, query_pos: torch.Tensor, key_padding_mask: torch.Tensor | None) -> torch.Tensor:
        query = self.norms[0](self.self_attn(query, query, query, query_pos, query_pos,
                                             key_padding_mask=key_padding_mask))
        return self.norms[1](self.ffn(query))


class DetrTransformerDecoderLayer(nn.Module):
    def __init__(self, self_attn_cfg: dict | None = None, cross_attn_cfg: dict | None = None,
                 ffn_cfg: dict | None = None) -> None:
        super().__init__()
        default = {"embed_dims": 256, "num_heads": 8}
        self.self_attn = make(MultiheadAttention, self_attn_cfg or default, "self_attn_cfg")
        self.cross_attn = make(MultiheadAttention, cross_attn_cfg or default, "cross_attn_cfg")
        self.embed_dims = self.self_attn.embed_dims
        self.ffn = make(FFN, ffn_cfg, "ffn_cfg")
        self.norms = nn.ModuleList(nn.LayerNorm(self.embed_dims) for _ in range(3))

    def forward(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, query_pos: torch.Tensor,
                key_pos: torch.Tensor, key_padding_mask: torch.Tensor | None) -> torch.Tensor:
        query = self.norms[0](self.self_attn(query, query, query, query_pos, query_pos))
        query = self.norms[1](self.cross_attn(query, key, value, query_pos, key_pos,
                                              key_padding_mask=key_padding_mask))
        return self.norms[2](self.ffn(query))


class DetrTransformerEncoder(nn.Module):
    def __init__(self, num_layers: int, layer_cfg: dict | None = None) -> None:
        super().__init__()
        self.layers = nn.ModuleList(make(DetrTransformerEncoderLayer, layer_cfg, "layer_cfg")
                                    for _ in range(num_layers))
        self.embed_dims = self.layers[0].embed_dims

    def forward(self, query: torch.Tensor, query_pos: torch.Tensor, key_padding_mask: torch.Tensor | None) -> torch.Tensor:
        for layer in self.layers:
            query = layer(query, query_pos, key_padding_mask)
        return query


class DetrTransformerDecoder(nn.Module):
    """Returns the post-normed output of every layer, stacked: (num_layers, B, Q, C)."""

    def __init__(self, num_layers: int, layer_cfg: dict | None = None, return_intermediate: bool = True) -> None:
        super().__init__()
        self.layers = nn.ModuleList(make(DetrTransformerDecoderLayer, layer_cfg, "layer_cfg")
                                    for _ in range(num_layers))
        self.embed_dims = self.layers[0].embed_dims
        self.post_norm = nn.LayerNorm(self.embed_dims)
        self.return_intermediate = return_intermediate

    def forward(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, query_pos: torch.Tensor,
                key_pos: torch.Tensor, key_padding_mask: torch.Tensor | None) -> torch.Tensor:
        intermediate = []
        for layer in self.layers:
            query = layer(query, key, value, query_pos, key_pos, key_padding_mask)
            intermediate.append(self.post_norm(query))
        return torch.stack(intermediate) if self.return_intermediate else intermediate[-1][None]
