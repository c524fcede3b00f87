"""Non-maximum suppression: `nms`, `batched_nms` (torchvision-identical), `soft_nms`, `batched_soft_nms`.

CPU tensors run det's kernels (torch.ops.det.*); CUDA tensors use torchvision's kernels for
`nms`/`batched_nms`, and det's CUDA Soft-NMS kernel where the build has one (torchvision has no
Soft-NMS); otherwise Soft-NMS runs on the CPU.
"""
from __future__ import annotations

import torch
import torchvision
from torch import Tensor

from det.ops._ext import _C, has_kernel  # noqa: F401  - _C registers torch.ops.det.*

SOFT_NMS_METHODS = {"linear": 0, "gaussian": 1}


def _float_boxes_scores(boxes: Tensor, scores: Tensor) -> tuple[Tensor, Tensor]:
    if boxes.dim() != 2 or boxes.shape[-1] != 4:
        raise ValueError(f"boxes must have shape (N, 4), got {tuple(boxes.shape)}")
    if scores.dim() != 1 or scores.shape[0] != boxes.shape[0]:
        raise ValueError(f"scores must have shape (N,) with N={boxes.shape[0]}, got {tuple(scores.shape)}")
    dtype = torch.promote_types(boxes.dtype, scores.dtype)
    if dtype not in (torch.float32, torch.float64):
        dtype = torch.float32
    return boxes.to(dtype), scores.to(dtype)


def nms(boxes: Tensor, scores: Tensor, iou_threshold: float) -> Tensor:
    """Greedy NMS: keep the highest-scoring box, drop boxes with IoU > `iou_threshold` with it, repeat.

    Args:
        boxes: (N, 4) float32/float64 boxes as (x1, y1, x2, y2).
        scores: (N,) scores, same dtype as boxes (other dtypes are promoted).
        iou_threshold: boxes overlapping a kept box with IoU strictly above it are discarded.

    Returns:
        (K,) int64 indices of the kept boxes in decreasing score order (ties: lower index
        first), identical to ``torchvision.ops.nms``.
    """
    if boxes.is_cuda:
        return torchvision.ops.nms(boxes, scores, float(iou_threshold))
    boxes, scores = _float_boxes_scores(boxes, scores)
    return torch.ops.det.nms(boxes, scores, float(iou_threshold))


def batched_nms(boxes: Tensor, scores: Tensor, idxs: Tensor, iou_threshold: float) -> Tensor:
    """Class-aware NMS: boxes with different `idxs` never suppress each other.

    Args:
        boxes: (N, 4) float32/float64 (x1, y1, x2, y2).
        scores: (N,) scores.
        idxs: (N,) integer category of each box.
        iou_threshold: IoU above which a lower-scoring box of the same category is dropped.

    Returns:
        (K,) int64 kept indices in decreasing score order, identical to
        ``torchvision.ops.batched_nms`` (including its order among tied scores).
    """
    if boxes.is_cuda:
        return torchvision.ops.batched_nms(boxes, scores, idxs, float(iou_threshold))
    boxes, scores = _float_boxes_scores(boxes, scores)
    if idxs.shape != scores.shape:
        raise ValueError(f"idxs must have shape (N,) with N={scores.shape[0]}, got {tuple(idxs.shape)}")
    if boxes.numel() == 0:
        return torch.empty((0,), dtype=torch.int64)
    if boxes.numel() <= 4000:
        # torchvision offsets the boxes of each class apart for small inputs; the offsets round
        # the coordinates, so doing the same is what keeps the result bit-identical.
        max_coordinate = boxes.max()
        offsets = idxs.to(boxes) * (max_coordinate + torch.tensor(1).to(boxes))
        return torch.ops.det.nms(boxes + offsets[:, None], scores, float(iou_threshold))
    return torch.ops.det.batched_nms(boxes, scores, idxs, float(iou_threshold))


def soft_nms(boxes: Tensor, scores: Tensor, iou_threshold: float = 0.3, sigma: float = 0.5,
             min_score: float = 1e-3, method: str = "linear") -> tuple[Tensor, Tensor]:
    """Soft-NMS (Bodla et al. 2017): decay the scores of overlapping boxes instead of dropping them.

    Repeatedly select the box with the highest current score (ties: lower index), then multiply
    the score of every remaining box by ``1 - IoU`` when IoU > `iou_threshold` ('linear') or by
    ``exp(-IoU**2 / sigma)`` ('gaussian'). Boxes whose score is or falls below `min_score` are
    dropped.

    Args:
        boxes: (N, 4) float32/float64 (x1, y1, x2, y2).
        scores: (N,) scores.

    Returns:
        keep: (K,) int64 indices in selection order (non-increasing new score);
        new_scores: (K,) decayed scores of those boxes, dtype of the scores.
    """
    idxs = torch.zeros(boxes.shape[0], dtype=torch.int64, device=boxes.device)
    return batched_soft_nms(boxes, scores, idxs, iou_threshold, sigma, min_score, method)


def batched_soft_nms(boxes: Tensor, scores: Tensor, idxs: Tensor, iou_threshold: float = 0.3,
                     sigma: float = 0.5, min_score: float = 1e-3,
                     method: str = "linear") -> tuple[Tensor, Tensor]:
    """Soft-NMS run separately for each category in `idxs` (categories run in parallel).

    Args/semantics as :func:`soft_nms`; `idxs` is (N,) integer categories.

    Returns:
        keep: (K,) int64 indices sorted by decreasing new score (ties: category, then selection order);
        new_scores: (K,) decayed scores.
    """
    if method not in SOFT_NMS_METHODS:
        raise ValueError(f"soft_nms method must be one of {sorted(SOFT_NMS_METHODS)}, got {method!r}")
    if sigma <= 0:
        raise ValueError(f"soft_nms sigma must be > 0, got {sigma}")
    device = boxes.device
    on_gpu = boxes.is_cuda and has_kernel("batched_soft_nms", "CUDA")
    if not on_gpu:
        boxes, scores, idxs = boxes.cpu(), scores.cpu(), idxs.cpu()
    boxes, scores = _float_boxes_scores(boxes, scores)
    if idxs.shape != scores.shape:
        raise ValueError(f"idxs must have shape (N,) with N={scores.shape[0]}, got {tuple(idxs.shape)}")
    keep, new_scores = torch.ops.det.batched_soft_nms(
        boxes, scores, idxs, float(iou_threshold), float(sigma), float(min_score), SOFT_NMS_METHODS[method])
    return keep.to(device), new_scores.to(device)


@torch.library.register_fake("det::nms")
def _nms_fake(boxes, scores, iou_threshold):
    return boxes.new_empty((torch.library.get_ctx().new_dynamic_size(),), dtype=torch.int64)


@torch.library.register_fake("det::batched_nms")
def _batched_nms_fake(boxes, scores, idxs, iou_threshold):
    return boxes.new_empty((torch.library.get_ctx().new_dynamic_size(),), dtype=torch.int64)


@torch.library.register_fake("det::batched_soft_nms")
def _batched_soft_nms_fake(boxes, scores, idxs, iou_threshold, sigma, min_score, method):
    k = torch.library.get_ctx().new_dynamic_size()
    return boxes.new_empty((k,), dtype=torch.int64), scores.new_empty((k,))
