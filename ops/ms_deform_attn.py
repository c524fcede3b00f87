"""Multi-scale deformable attention (Deformable DETR, DINO): torch.ops.det.ms_deform_attn on CPU."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from det.ops._ext import _C, has_kernel  # noqa: F401  - _C registers torch.ops.det.*


def ms_deform_attn(value: Tensor, spatial_shapes: Tensor, level_start_index: Tensor, sampling_locations: Tensor,
                   attention_weights: Tensor) -> Tensor:
    """Sum over levels and points of bilinear samples of `value` weighted by attention (mmcv's op).

    Args:
        value: (B, N, heads, C), every level's map flattened row-major and concatenated.
        spatial_shapes: (L, 2) int64 (H, W) of each level.
        level_start_index: (L,) int64 first row of each level in `value`.
        sampling_locations: (B, Q, heads, L, P, 2) (x, y) normalised to [0, 1] of each level's map
            (pixel centres at (i + 0.5) / size; samples outside the map read zeros).
        attention_weights: (B, Q, heads, L, P).

    Returns:
        (B, Q, heads * C), differentiable with respect to value, locations and weights. CUDA
        tensors use det's CUDA kernel where the build has one, else the grid_sample formulation.
    """
    spatial_shapes = spatial_shapes.to(torch.int64)
    level_start_index = level_start_index.to(torch.int64)
    # ONNX export (det export): the grid_sample decomposition (ONNX GridSample, opset >= 16)
    if (value.is_cuda and not has_kernel("ms_deform_attn", "CUDA")) or torch.onnx.is_in_onnx_export():
        return ms_deform_attn_pytorch(value, spatial_shapes, sampling_locations, attention_weights)
    return torch.ops.det.ms_deform_attn(value, spatial_shapes.to(value.device), level_start_index.to(value.device),
                                        sampling_locations, attention_weights)


def ms_deform_attn_pytorch(value: Tensor, spatial_shapes: Tensor, sampling_locations: Tensor,
                           attention_weights: Tensor) -> Tensor:
    """The same operation with F.grid_sample per level (any device; the path CUDA tensors take)."""
    b, _, heads, c = value.shape
    _, q, _, levels, points, _ = sampling_locations.shape
    sizes = [int(h) * int(w) for h, w in spatial_shapes.tolist()]
    grids = 2 * sampling_locations - 1
    sampled = []
    for lvl, v in enumerate(value.split(sizes, dim=1)):
        h, w = (int(s) for s in spatial_shapes[lvl].tolist())
        v = v.flatten(2).transpose(1, 2).reshape(b * heads, c, h, w)
        grid = grids[:, :, :, lvl].transpose(1, 2).flatten(0, 1)
        sampled.append(F.grid_sample(v, grid, mode="bilinear", padding_mode="zeros", align_corners=False))
    weights = attention_weights.transpose(1, 2).reshape(b * heads, 1, q, levels * points)
    out = (torch.stack(sampled, dim=-2).flatten(-2) * weights).sum(-1)
    return out.view(b, heads * c, q).transpose(1, 2).contiguous()


def _setup_context(ctx, inputs, output) -> None:
    ctx.save_for_backward(*inputs)


def _backward(ctx, grad):
    value, shapes, starts, loc, attn = ctx.saved_tensors
    g_value, g_loc, g_attn = torch.ops.det.ms_deform_attn_backward(grad, value, shapes, starts, loc, attn)
    return g_value, None, None, g_loc, g_attn


torch.library.register_autograd("det::ms_deform_attn", _backward, setup_context=_setup_context)
# bf16 autocast: the kernel is float32/float64, so the floating inputs are cast up (as roi_align)
torch.library.register_autocast("det::ms_deform_attn", "cpu", torch.float32)


@torch.library.register_fake("det::ms_deform_attn")
def _ms_deform_attn_fake(value, spatial_shapes, level_start_index, sampling_locations, attention_weights):
    b, _, heads, c = value.shape
    return value.new_empty((b, sampling_locations.shape[1], heads * c))


@torch.library.register_fake("det::ms_deform_attn_backward")
def _ms_deform_attn_backward_fake(grad, value, spatial_shapes, level_start_index, sampling_locations,
                                  attention_weights):
    return value.new_empty(value.shape), sampling_locations.new_empty(sampling_locations.shape), \
        attention_weights.new_empty(attention_weights.shape)
