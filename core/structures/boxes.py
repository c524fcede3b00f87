"""Box helpers for (N, 4) tensors or arrays. Corner format `xyxy` is det's internal format;
COCO files use `xywh`. Functions accept torch tensors and numpy arrays alike and return the
same kind."""
from __future__ import annotations

from typing import Union

import numpy as np
import torch
from torchvision.ops import box_area as _tv_box_area
from torchvision.ops import box_convert, box_iou as _tv_box_iou

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


def box_iou(a: Boxes, b: Boxes) -> Boxes:
    """Pairwise IoU (N, M) of xyxy boxes (torchvision)."""
    ta, was_np = _as_tensor(a)
    tb, _ = _as_tensor(b)
    return _back(_tv_box_iou(ta, tb), was_np)


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
