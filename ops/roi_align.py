"""RoIAlign (Mask R-CNN) forward and backward: torch.ops.det.roi_align on CPU."""
from __future__ import annotations

import torch
import torchvision
from torch import Tensor
from torch.nn.modules.utils import _pair

from det.ops._ext import _C  # noqa: F401  - registers torch.ops.det.*


def _rois(boxes: Tensor | list[Tensor], input: Tensor) -> Tensor:
    if isinstance(boxes, (list, tuple)):
        batch_idx = torch.cat([torch.full((len(b), 1), i, dtype=input.dtype, device=input.device)
                               for i, b in enumerate(boxes)]) if boxes else input.new_zeros((0, 1))
        boxes = torch.cat([batch_idx, torch.cat(list(boxes)).to(input.dtype)], dim=1) if boxes else \
            input.new_zeros((0, 5))
    if boxes.dim() != 2 or boxes.shape[1] != 5:
        raise ValueError(f"boxes must be (K, 5) [batch_index, x1, y1, x2, y2] or a list of (K_i, 4), "
                         f"got {tuple(boxes.shape)}")
    return boxes.to(input.dtype)


def roi_align(input: Tensor, boxes: Tensor | list[Tensor], output_size: int | tuple[int, int],
              spatial_scale: float = 1.0, sampling_ratio: int = -1, aligned: bool = False) -> Tensor:
    """Bilinear RoI pooling, same signature and values as ``torchvision.ops.roi_align``.

    Args:
        input: (B, C, H, W) float32/float64 feature map.
        boxes: (K, 5) rows [batch_index, x1, y1, x2, y2] in input-image coordinates, or a list
            of B tensors (K_i, 4).
        output_size: (h, w) of each pooled RoI (an int for square).
        spatial_scale: feature-map size / image size (e.g. 1/16).
        sampling_ratio: bilinear samples per bin side; <= 0 means adaptive ceil(roi_size / bin).
        aligned: shift boxes by -0.5 pixel (pixel-centre convention of Detectron2).

    Returns:
        (K, C, h, w) pooled features, differentiable with respect to `input`.
    """
    rois = _rois(boxes, input)
    out_h, out_w = _pair(output_size)
    if input.is_cuda:
        return torchvision.ops.roi_align(input, rois, (out_h, out_w), spatial_scale, sampling_ratio, aligned)
    return torch.ops.det.roi_align(input, rois, float(spatial_scale), out_h, out_w, sampling_ratio, aligned)


def _setup_context(ctx, inputs, output) -> None:
    input, rois, spatial_scale, pooled_height, pooled_width, sampling_ratio, aligned = inputs
    ctx.save_for_backward(rois)
    ctx.args = (spatial_scale, pooled_height, pooled_width, *input.shape, sampling_ratio, aligned)


def _backward(ctx, grad):
    (rois,) = ctx.saved_tensors
    spatial_scale, ph, pw, b, c, h, w, sampling_ratio, aligned = ctx.args
    grad_input = torch.ops.det.roi_align_backward(grad, rois, spatial_scale, ph, pw, b, c, h, w, sampling_ratio,
                                                  aligned)
    return grad_input, None, None, None, None, None, None


torch.library.register_autograd("det::roi_align", _backward, setup_context=_setup_context)
# under CPU autocast (bf16 training/inference) the features arrive in bfloat16; the kernel is
# float32/float64, so autocast casts them up (as torchvision registers its roi_align)
torch.library.register_autocast("det::roi_align", "cpu", torch.float32)


@torch.library.register_fake("det::roi_align")
def _roi_align_fake(input, rois, spatial_scale, pooled_height, pooled_width, sampling_ratio, aligned):
    return input.new_empty((rois.shape[0], input.shape[1], pooled_height, pooled_width))


@torch.library.register_fake("det::roi_align_backward")
def _roi_align_backward_fake(grad, rois, spatial_scale, pooled_height, pooled_width, batch_size, channels,
                             height, width, sampling_ratio, aligned):
    return grad.new_empty((batch_size, channels, height, width))
