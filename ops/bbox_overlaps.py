"""Pairwise IoU / IoF / GIoU between two sets of boxes (MMDetection's `bbox_overlaps` semantics)."""
from __future__ import annotations

import torch
from torch import Tensor

MODES = ("iou", "iof", "giou")


def bbox_overlaps(bboxes1: Tensor, bboxes2: Tensor, mode: str = "iou", aligned: bool = False,
                  eps: float = 1e-6) -> Tensor:
    """Overlaps between boxes (x1, y1, x2, y2).

    Args:
        bboxes1: (..., N, 4) float boxes.
        bboxes2: (..., M, 4) float boxes (same leading batch dims; M == N when `aligned`).
        mode: 'iou' (intersection over union), 'iof' (intersection over the area of
            bboxes1), 'giou' (generalised IoU, in [-1, 1]).
        aligned: compare bboxes1[i] with bboxes2[i] only.
        eps: lower bound of the denominators (zero-area boxes give 0, not NaN).

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
    area1 = (bboxes1[..., 2] - bboxes1[..., 0]) * (bboxes1[..., 3] - bboxes1[..., 1])
    area2 = (bboxes2[..., 2] - bboxes2[..., 0]) * (bboxes2[..., 3] - bboxes2[..., 1])
    if aligned:
        a, b = bboxes1, bboxes2
    else:
        a, b = bboxes1[..., :, None, :], bboxes2[..., None, :, :]
        area1, area2 = area1[..., :, None], area2[..., None, :]
    wh = (torch.minimum(a[..., 2:], b[..., 2:]) - torch.maximum(a[..., :2], b[..., :2])).clamp(min=0)
    overlap = wh[..., 0] * wh[..., 1]
    union = area1 + area2 - overlap if mode in ("iou", "giou") else area1.expand_as(overlap)
    union = union.clamp(min=eps)
    ious = overlap / union
    if mode != "giou":
        return ious
    ewh = (torch.maximum(a[..., 2:], b[..., 2:]) - torch.minimum(a[..., :2], b[..., :2])).clamp(min=0)
    enclose = (ewh[..., 0] * ewh[..., 1]).clamp(min=eps)
    return ious - (enclose - union) / enclose
