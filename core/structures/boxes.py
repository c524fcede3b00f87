"""Box helpers for (N, 4) tensors or arrays. Corner format `xyxy` is det's internal format;
COCO files use `xywh`. Functions accept torch tensors and numpy arrays alike and return the
same kind. `box_overlaps` is det's one IoU: every metric, assigner, loss and tracker calls it."""
from __future__ import annotations

from typing import Any, Union

import numpy as np
import torch
from torchvision.ops import box_area as _tv_box_area
from torchvision.ops import box_convert

from det.ops import bbox_overlaps

Boxes = Union[torch.Tensor, np.ndarray]


def _as_tensor(boxes: Boxes) -> tuple[torch.Tensor, bool]:
    if isinstance(boxes, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(boxes)), True
    return boxes, False


def _back(t: torch.Tensor, was_numpy: bool) -> Boxes:
    return t.numpy() if was_numpy else t


def _convert(boxes: Boxes, src: str, dst: str) -> Boxes:
    t, was_np = _as_tensor(boxes)
    return _back(box_convert(t, src, dst), was_np)


def xywh_to_xyxy(boxes: Boxes) -> Boxes:
    return _convert(boxes, "xywh", "xyxy")


def xyxy_to_xywh(boxes: Boxes) -> Boxes:
    return _convert(boxes, "xyxy", "xywh")


def cxcywh_to_xyxy(boxes: Boxes) -> Boxes:
    return _convert(boxes, "cxcywh", "xyxy")


def xyxy_to_cxcywh(boxes: Boxes) -> Boxes:
    return _convert(boxes, "xyxy", "cxcywh")


def box_area(boxes: Boxes) -> Boxes:
    t, was_np = _as_tensor(boxes)
    return _back(_tv_box_area(t), was_np)


def box_overlaps(a: Boxes, b: Boxes, mode: str = "iou", *, aligned: bool = False, fmt: str = "xyxy",
                 offset: float = 0.0, eps: float = 1e-6, dtype: Any = None) -> Boxes:
    """IoU / IoF (over `a`'s area) / GIoU of (N, 4) and (M, 4) boxes: (N, M), or (N,) when
    `aligned`; computed by `det.ops.bbox_overlaps` (differentiable for tensors that need it).

    Results are of `a`'s kind (tensor or array) and computed in `dtype` (default: `a`'s float
    dtype, float64 for integer arrays). `fmt`: 'xyxy' or 'xywh' (x2 = x + w). `offset` is added
    to every width and height (1: VOC devkit's legacy pixels); `eps` floors the denominators.
    """
    if fmt not in ("xyxy", "xywh"):
        raise ValueError(f"box format must be 'xyxy' or 'xywh', got {fmt!r}")
    was_np = isinstance(a, np.ndarray)
    ta, tb = _float_boxes(a, dtype), _float_boxes(b, dtype)
    tb = tb.to(ta.dtype)
    if fmt == "xywh":
        ta, tb = xywh_to_xyxy(ta), xywh_to_xyxy(tb)
    return _back(bbox_overlaps(ta, tb, mode, aligned, eps, offset), was_np)


def _float_boxes(boxes: Boxes, dtype: Any) -> torch.Tensor:
    """A float tensor of the first four columns (a flat or empty input is one row / no rows),
    in `dtype` (numpy or torch) when given."""
    if isinstance(boxes, np.ndarray):
        if dtype is None:
            dtype = boxes.dtype if np.issubdtype(boxes.dtype, np.floating) else np.float64
        t = torch.from_numpy(np.ascontiguousarray(boxes, dtype=dtype))
    else:
        t = torch.as_tensor(boxes)
        if dtype is not None:
            t = t.to(dtype if isinstance(dtype, torch.dtype) else torch.from_numpy(np.zeros(0, dtype)).dtype)
        elif not t.is_floating_point():
            t = t.to(torch.get_default_dtype())
    return (t.reshape(-1, 4) if t.dim() < 2 else t)[..., :4]


def clip_boxes(boxes: Boxes, height: int, width: int) -> Boxes:
    """Clip xyxy boxes to an image of `height` x `width`."""
    if isinstance(boxes, np.ndarray):
        out = boxes.copy()
        out[:, 0::2] = out[:, 0::2].clip(0, width)
        out[:, 1::2] = out[:, 1::2].clip(0, height)
        return out
    out = boxes.clone()
    out[:, 0::2] = out[:, 0::2].clamp(0, width)
    out[:, 1::2] = out[:, 1::2].clamp(0, height)
    return out


def flip_boxes(boxes: Boxes, height: int, width: int, direction: str = "horizontal") -> Boxes:
    """Mirror xyxy boxes inside an image: 'horizontal', 'vertical' or 'diagonal' (both)."""
    if direction not in ("horizontal", "vertical", "diagonal"):
        raise ValueError(f"unknown flip direction '{direction}'")
    out = boxes.copy() if isinstance(boxes, np.ndarray) else boxes.clone()
    if direction in ("horizontal", "diagonal"):
        out[:, 0] = width - boxes[:, 2]
        out[:, 2] = width - boxes[:, 0]
    if direction in ("vertical", "diagonal"):
        out[:, 1] = height - boxes[:, 3]
        out[:, 3] = height - boxes[:, 1]
    return out


def rescale_boxes(boxes: Boxes, scale_factor: tuple[float, float]) -> Boxes:
    """Multiply x by scale_factor[0] and y by scale_factor[1]."""
    sx, sy = scale_factor
    out = boxes.copy() if isinstance(boxes, np.ndarray) else boxes.clone()
    out[:, 0::2] = out[:, 0::2] * sx
    out[:, 1::2] = out[:, 1::2] * sy
    return out


def masks_to_boxes(masks: torch.Tensor) -> torch.Tensor:
    """(N, H, W) binary masks -> (N, 4) float xyxy boxes enclosing their pixels (pixel (x, y)
    spans [x, x + 1), as BitmapMasks.get_bboxes); empty masks give zeros."""
    n, h, w = masks.shape
    if n == 0:
        return masks.new_zeros((0, 4), dtype=torch.float32)
    cols, rows = masks.any(1), masks.any(2)  # (N, W), (N, H)
    x1 = cols.float().argmax(1)
    x2 = w - cols.flip(1).float().argmax(1)
    y1 = rows.float().argmax(1)
    y2 = h - rows.flip(1).float().argmax(1)
    boxes = torch.stack([x1, y1, x2, y2], 1).float()
    return boxes * cols.any(1, keepdim=True)
