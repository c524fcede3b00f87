"""Multi-scale deformable attention module (Deformable DETR; MMCV's parameter names) on top of
the compiled det.ops.ms_deform_attn."""
from __future__ import annotations

import math

import torch
from torch import nn

from det.core.models._ops import ms_deform_attn


class MultiScaleDeformableAttention(nn.Module):
    """Each query samples `num_points` points per level and head around its reference point
    (x, y) or box (cx, cy, w, h) in [0, 1]; returns dropout(output_proj(samples)) + identity."""

    def __init__(self, embed_dims: int = 256, num_heads: int = 8, num_levels: int = 4, num_points: int = 4,
                 im2col_step: int = 64, dropout: float = 0.1, batch_first: bool = True,
                 value_proj_ratio: float = 1.0) -> None:
        super().__init__()
        del im2col_step, batch_first  # CUDA-kernel chunking; always batch-first here
        self.embed_dims, self.num_heads, self.num_levels, self.num_points = embed_dims, num_heads, num_levels, num_points
        self.dropout = nn.Dropout(dropout)
        self.sampling_offsets = nn.Linear(embed_dims, num_heads * num_levels * num_points * 2)
        self.attention_weights = nn.Linear(embed_dims, num_heads * num_levels * num_points)
        value_size = int(embed_dims * value_proj_ratio)
        self.value_proj = nn.Linear(embed_dims, value_size)
        self.output_proj = nn.Linear(value_size, embed_dims)
        self.init_weights()

    def init_weights(self) -> None:
        """Offsets start on rays at evenly spaced angles, one step further per point."""
        nn.init.zeros_(self.sampling_offsets.weight)
        thetas = torch.arange(self.num_heads, dtype=torch.float32) * (2.0 * math.pi / self.num_heads)
        grid = torch.stack([thetas.cos(), thetas.sin()], -1)
        grid = (grid / grid.abs().max(-1, keepdim=True)[0]).view(self.num_heads, 1, 1, 2)
        grid = grid.repeat(1, self.num_levels, self.num_points, 1)
        grid *= torch.arange(1, self.num_points + 1, dtype=torch.float32).view(1, 1, -1, 1)
        with torch.no_grad():
            self.sampling_offsets.bias.copy_(grid.flatten())
        nn.init.zeros_(self.attention_weights.weight)
        nn.init.zeros_(self.attention_weights.bias)
        for fc in (self.value_proj, self.output_proj):
            nn.init.xavier_uniform_(fc.weight)
            nn.init.zeros_(fc.bias)

    def forward(self, query: torch.Tensor, value: torch.Tensor | None, query_pos: torch.Tensor | None,
                key_padding_mask: torch.Tensor | None, reference_points: torch.Tensor, spatial_shapes: torch.Tensor,
                level_start_index: torch.Tensor) -> torch.Tensor:
        value = query if value is None else value
        identity = query
        if query_pos is not None:
            query = query + query_pos
        b, nq, _ = query.shape
        v = self.value_proj(value)
        if key_padding_mask is not None:
            v = v.masked_fill(key_padding_mask[..., None], 0.0)
        v = v.view(b, v.size(1), self.num_heads, -1)
        offsets = self.sampling_offsets(query).view(b, nq, self.num_heads, self.num_levels, self.num_points, 2)
        weights = self.attention_weights(query).view(b, nq, self.num_heads, self.num_levels * self.num_points)
        weights = weights.softmax(-1).view(b, nq, self.num_heads, self.num_levels, self.num_points)
        locations = sampling_locations(reference_points, offsets, spatial_shapes, self.num_points)
        out = ms_deform_attn(v, spatial_shapes, level_start_index, locations, weights)
        return self.dropout(self.output_proj(out.to(query.dtype))) + identity


def sampling_locations(reference_points: torch.Tensor, offsets: torch.Tensor, spatial_shapes: torch.Tensor,
                       num_points: int) -> torch.Tensor:
    """Points: reference + offset / (W, H) of the level; boxes: centre + offset / P * size / 2."""
    if reference_points.shape[-1] == 2:
        normalizer = torch.stack([spatial_shapes[..., 1], spatial_shapes[..., 0]], -1).to(offsets.dtype)
        return reference_points[:, :, None, :, None, :] + offsets / normalizer[None, None, None, :, None, :]
    return reference_points[:, :, None, :, None, :2] + \
        offsets / num_points * reference_points[:, :, None, :, None, 2:] * 0.5
