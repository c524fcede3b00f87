"""Deformable DETR's encoder (deformable self-attention over all levels) and decoder
(self-attention + deformable cross-attention, optional iterative box refinement)."""
from __future__ import annotations

import torch
from torch import nn

from det.core.models.transformer.attention import FFN, MultiheadAttention, make
from det.core.models.transformer.deformable_attention import MultiScaleDeformableAttention


def inverse_sigmoid(x: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    x = x.clamp(min=0, max=1)
    return torch.log(x.clamp(min=eps) / (1 - x).clamp(min=eps))


class DeformableDetrTransformerEncoderLayer(nn.Module):
    def __init__(self, self_attn_cfg: dict | None = None, ffn_cfg: dict | None = None) -> None:
        super().__init__()
        self.self_attn = make(MultiScaleDeformableAttention, self_attn_cfg, "self_attn_cfg")
        self.embed_dims = self.self_attn.embed_dims
        self.ffn = make(FFN, ffn_cfg, "ffn_cfg")
        self.norms = nn.ModuleList(nn.LayerNorm(self.embed_dims) for _ in range(2))

    def forward(self, query, query_pos, key_padding_mask, reference_points, spatial_shapes, level_start_index):
        query = self.norms[0](self.self_attn(query, query, query_pos, key_padding_mask, reference_points,
                                             spatial_shapes, level_start_index))
        return self.norms[1](self.ffn(query))


class DeformableDetrTransformerDecoderLayer(nn.Module):
    def __init__(self, self_attn_cfg: dict | None = None, cross_attn_cfg: dict | None = None,
                 ffn_cfg: dict | None = None) -> None:
        super().__init__()
        self.self_attn = make(MultiheadAttention, self_attn_cfg or {"embed_dims": 256, "num_heads": 8}, "self_attn_cfg")
        self.cross_attn = make(MultiScaleDeformableAttention, cross_attn_cfg, "cross_attn_cfg")
        self.embed_dims = self.self_attn.embed_dims
        self.ffn = make(FFN, ffn_cfg, "ffn_cfg")
        self.norms = nn.ModuleList(nn.LayerNorm(self.embed_dims) for _ in range(3))

    def forward(self, query, query_pos, value, key_padding_mask, reference_points, spatial_shapes, level_start_index,
                self_attn_mask: torch.Tensor | None = None):
        query = self.norms[0](self.self_attn(query, query, query, query_pos, query_pos, attn_mask=self_attn_mask))
        query = self.norms[1](self.cross_attn(query, value, query_pos, key_padding_mask, reference_points,
                                              spatial_shapes, level_start_index))
        return self.norms[2](self.ffn(query))


class DeformableDetrTransformerEncoder(nn.Module):
    def __init__(self, num_layers: int, layer_cfg: dict | None = None) -> None:
        super().__init__()
        self.layers = nn.ModuleList(make(DeformableDetrTransformerEncoderLayer, layer_cfg, "layer_cfg")
                                    for _ in range(num_layers))
        self.embed_dims = self.layers[0].embed_dims

    def forward(self, query, query_pos, key_padding_mask, spatial_shapes, level_start_index, valid_ratios):
        refs = encoder_reference_points(spatial_shapes, valid_ratios)
        for layer in self.layers:
            query = layer(query, query_pos, key_padding_mask, refs, spatial_shapes, level_start_index)
        return query


def encoder_reference_points(spatial_shapes: torch.Tensor, valid_ratios: torch.Tensor) -> torch.Tensor:
    """(B, N, L, 2) cell centres of every level, normalised by the valid (unpadded) region."""
    refs = []
    for lvl, (h, w) in enumerate(spatial_shapes.tolist()):
        ys, xs = torch.meshgrid(torch.linspace(0.5, h - 0.5, h, device=valid_ratios.device),
                                torch.linspace(0.5, w - 0.5, w, device=valid_ratios.device), indexing="ij")
        ys = ys.reshape(-1)[None] / (valid_ratios[:, None, lvl, 1] * h)
        xs = xs.reshape(-1)[None] / (valid_ratios[:, None, lvl, 0] * w)
        refs.append(torch.stack((xs, ys), -1))
    return torch.cat(refs, 1)[:, :, None] * valid_ratios[:, None]


class DeformableDetrTransformerDecoder(nn.Module):
    """Returns (states (layers, B, Q, C), references (layers, B, Q, 2|4)); with `reg_branches`
    each layer refines the reference boxes (detached between layers)."""

    def __init__(self, num_layers: int, layer_cfg: dict | None = None, return_intermediate: bool = True) -> None:
        super().__init__()
        self.layers = nn.ModuleList(make(DeformableDetrTransformerDecoderLayer, layer_cfg, "layer_cfg")
                                    for _ in range(num_layers))
        self.embed_dims = self.layers[0].embed_dims
        self.num_layers = num_layers
        self.return_intermediate = return_intermediate

    def forward(self, query, query_pos, value, key_padding_mask, reference_points, spatial_shapes, level_start_index,
                valid_ratios, reg_branches: nn.ModuleList | None = None):
        states, refs = [], []
        for i, layer in enumerate(self.layers):
            ratios = torch.cat([valid_ratios, valid_ratios], -1) if reference_points.shape[-1] == 4 else valid_ratios
            query = layer(query, query_pos, value, key_padding_mask, reference_points[:, :, None] * ratios[:, None],
                          spatial_shapes, level_start_index)
            if reg_branches is not None:
                delta = reg_branches[i](query)
                if reference_points.shape[-1] == 4:
                    new = delta + inverse_sigmoid(reference_points)
                else:
                    new = torch.cat([delta[..., :2] + inverse_sigmoid(reference_points), delta[..., 2:]], -1)
                reference_points = new.sigmoid().detach()
            states.append(query)
            refs.append(reference_points)
        if not self.return_intermediate:
            return query[None], reference_points[None]
        return torch.stack(states), torch.stack(refs)
