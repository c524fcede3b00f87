"""Pairwise IoU / IoF / GIoU between two sets of boxes (MMDetection's `bbox_overlaps` semantics).

2-D CPU inputs without autograd use the compiled one-pass kernel (torch.ops.det.bbox_overlaps,
4-20x faster than the vectorised torch code here, see docs/ops.md); inputs that need a
gradient, batched inputs and CUDA tensors use the vectorised torch code.
"""
from __future__ import annotations

import torch
from torch import Tensor

from det.ops._ext import _C  # noqa: F401  - registers torch.ops.det.*

MODES = ("iou", "iof", "giou")


def bbox_overlaps(bboxes1: Tensor, bboxes2: Tensor, mode: str = "iou", aligned: bool = False,
                  eps: float = 1e-6, offset: float = 0.0) -> Tensor:
    """Overlaps between boxes (x1, y1, x2, y2).

    Args:
        bboxes1: (..., N, 4) float boxes.
        bboxes2: (..., M, 4) float boxes (same leading batch dims; M == N when `aligned`).
        mode: 'iou' (intersection over union), 'iof' (intersection over the area of
            bboxes1), 'giou' (generalised IoU, in [-1, 1]).
        aligned: compare bboxes1[i] with bboxes2[i] only.
        eps: lower bound of the denominators (zero-area boxes give 0, not NaN).
        offset: added to every width and height (1: the legacy pixel convention of VOC's
            devkit, mmcv's `offset`).

    Returns:
        (..., N, M) overlaps, or (..., N) when `aligned`; dtype of the boxes. Differentiable.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if bboxes1.shape[-1] != 4 or bboxes2.shape[-1] != 4:
        raise ValueError(f"boxes must end with 4 coordinates, got {tuple(bboxes1.shape)} and {tuple(bboxes2.shape)}")
    if bboxes1.shape[:-2] != bboxes2.shape[:-2]:
        raise ValueError(f"batch dims differ: {tuple(bboxes1.shape[:-2])} vs {tuple(bboxes2.shape[:-2])}")
    if aligned and bboxes1.shape[-2] != bboxes2.shape[-2]:
        raise ValueError(f"aligned overlaps need as many boxes on both sides, got {bboxes1.shape[-2]} and {bboxes2.shape[-2]}")
    needs_grad = torch.is_grad_enabled() and (bboxes1.requires_grad or bboxes2.requires_grad)
    if (bboxes1.dim() == 2 and bboxes2.dim() == 2 and bboxes1.device.type == "cpu" and bboxes2.device.type == "cpu"
            and not needs_grad and bboxes1.dtype == bboxes2.dtype and bboxes1.dtype in (torch.float32, torch.float64)):
        return torch.ops.det.bbox_overlaps(bboxes1, bboxes2, MODES.index(mode), aligned, float(eps),
                                             float(offset))
    return bbox_overlaps_torch(bboxes1, bboxes2, mode, aligned, eps, offset)


def bbox_overlaps_torch(bboxes1: Tensor, bboxes2: Tensor, mode: str = "iou", aligned: bool = False,
                        eps: float = 1e-6, offset: float = 0.0) -> Tensor:
    """Vectorised torch implementation of :func:`bbox_overlaps` (differentiable, any device, batch dims)."""
    area1 = (bboxes1[..., 2] - bboxes1[..., 0] + offset) * (bboxes1[..., 3] - bboxes1[..., 1] + offset)
    area2 = (bboxes2[..., 2] - bboxes2[..., 0] + offset) * (bboxes2[..., 3] - bboxes2[..., 1] + offset)
    if aligned:
        a, b = bboxes1, bboxes2
    else:
        a, b = bboxes1[..., :, None, :], bboxes2[..., None, :, :]
        area1, area2 = area1[..., :, None], area2[..., None, :]
    wh = (torch.minimum(a[..., 2:], b[..., 2:]) - torch.maximum(a[..., :2], b[..., :2]) + offset).clamp(min=0)
    overlap = wh[..., 0] * wh[..., 1]
    union = area1 + area2 - overlap if mode in ("iou", "giou") else area1.expand_as(overlap)
    union = union.clamp(min=eps)
    ious = overlap / union
    if mode != "giou":
        return ious
    ewh = (torch.maximum(a[..., 2:], b[..., 2:]) - torch.minimum(a[..., :2], b[..., :2]) + offset).clamp(min=0)
    enclose = (ewh[..., 0] * ewh[..., 1]).clamp(min=eps)
    return ious - (enclose - union) / enclose


@torch.library.register_fake("det::bbox_overlaps")
def _bbox_overlaps_fake(boxes1, boxes2, mode, aligned, eps, offset):
    shape = (boxes1.shape[0],) if aligned else (boxes1.shape[0], boxes2.shape[0])
    return boxes1.new_empty(shape)
