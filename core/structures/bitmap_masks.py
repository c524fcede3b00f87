"""`BitmapMasks`: N instance masks of one image as an (N, H, W) uint8 array, with the geometric
operations data transforms need (resize, flip, crop, pad, warp). Each operation returns a new
object and never modifies its input (transforms may share arrays between samples, e.g. the
Mosaic cache)."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

from det.core.structures.masks import polygons_to_bitmap, rle_to_bitmap


class BitmapMasks:
    """Instance masks (N, H, W) uint8 in {0, 1}."""

    def __init__(self, masks: np.ndarray | Sequence[np.ndarray], height: int, width: int) -> None:
        if isinstance(masks, np.ndarray) and masks.ndim == 3:
            arr = masks
        elif len(masks) == 0:
            arr = np.zeros((0, height, width), np.uint8)
        else:
            arr = np.stack([np.asarray(m) for m in masks])
        if arr.shape[1:] != (height, width):
            raise ValueError(f"mask shape {arr.shape[1:]} != image shape {(height, width)}")
        self.masks = arr if arr.dtype == np.uint8 else arr.astype(np.uint8)
        self.height, self.width = int(height), int(width)

    # -- construction ----------------------------------------------------------------------
    @classmethod
    def from_annotations(cls, anns: Sequence[Any], height: int, width: int) -> "BitmapMasks":
        """From COCO segmentations: polygon lists, RLE dicts (compressed or not) or None."""
        out = np.zeros((len(anns), height, width), np.uint8)
        for i, seg in enumerate(anns):
            if seg is None:
                continue
            if isinstance(seg, dict):
                bm = rle_to_bitmap(seg)
            else:
                bm = polygons_to_bitmap(seg, height, width)
            if bm.shape != (height, width):
                raise ValueError(f"mask {i} has size {bm.shape}, image is {(height, width)}")
            out[i] = bm
        return cls(out, height, width)

    @classmethod
    def cat(cls, items: Sequence["BitmapMasks"]) -> "BitmapMasks":
        if not items:
            raise ValueError("nothing to concatenate")
        h, w = items[0].height, items[0].width
        return cls(np.concatenate([m.masks for m in items]), h, w)

    # -- container -------------------------------------------------------------------------
    def __len__(self) -> int:
        return int(self.masks.shape[0])

    def __getitem__(self, index: Any) -> "BitmapMasks":
        if hasattr(index, "numpy"):
            index = index.numpy()
        sub = self.masks[index]
        if sub.ndim == 2:
            sub = sub[None]
        return BitmapMasks(sub, self.height, self.width)

    def __repr__(self) -> str:
        return f"BitmapMasks(num={len(self)}, height={self.height}, width={self.width})"

    def to_ndarray(self) -> np.ndarray:
        return self.masks

    def to_tensor(self, dtype: Any = None) -> Any:
        import torch

        t = torch.from_numpy(np.ascontiguousarray(self.masks))
        return t.bool() if dtype is None else t.to(dtype)

    @property
    def areas(self) -> np.ndarray:
        """Pixel count of each mask (float32)."""
        return np.array([cv2.countNonZero(m) if m.size else 0 for m in self.masks], np.float32).reshape(len(self))

    # -- geometry --------------------------------------------------------------------------
    def get_bboxes(self) -> np.ndarray:
        """(N, 4) float32 xyxy boxes enclosing each mask's pixels (pixel (x, y) spans
        [x, x + 1)); empty masks give zeros."""
        boxes = np.zeros((len(self), 4), np.float32)
        for i, m in enumerate(self.masks):
            if m.size:
                x, y, w, h = cv2.boundingRect(m)
                if w and h:
                    boxes[i] = (x, y, x + w, y + h)
        return boxes

    def resize(self, height: int, width: int) -> "BitmapMasks":
        """Nearest-neighbour resize to (height, width)."""
        if len(self) == 0:
            return BitmapMasks(np.zeros((0, height, width), np.uint8), height, width)
        out = np.stack([cv2.resize(m, (width, height), interpolation=cv2.INTER_NEAREST_EXACT) for m in self.masks])
        return BitmapMasks(out, height, width)

    def flip(self, direction: str = "horizontal") -> "BitmapMasks":
        if direction == "horizontal":
            out = self.masks[:, :, ::-1]
        elif direction == "vertical":
            out = self.masks[:, ::-1, :]
        elif direction == "diagonal":
            out = self.masks[:, ::-1, ::-1]
        else:
            raise ValueError(f"unknown flip direction '{direction}'")
        return BitmapMasks(np.ascontiguousarray(out), self.height, self.width)

    def crop(self, x1: int, y1: int, x2: int, y2: int) -> "BitmapMasks":
        """Crop to the integer window [x1, x2) x [y1, y2) (clipped to the image)."""
        x1, x2 = max(0, int(x1)), min(self.width, int(x2))
        y1, y2 = max(0, int(y1)), min(self.height, int(y2))
        out = self.masks[:, y1:y2, x1:x2]
        return BitmapMasks(np.ascontiguousarray(out), y2 - y1, x2 - x1)

    def pad(self, height: int, width: int, top: int = 0, left: int = 0) -> "BitmapMasks":
        """Place the masks at (top, left) inside a zero canvas of (height, width)."""
        out = np.zeros((len(self), height, width), np.uint8)
        h = min(self.height, height - top)
        w = min(self.width, width - left)
        if h > 0 and w > 0:
            out[:, top:top + h, left:left + w] = self.masks[:, :h, :w]
        return BitmapMasks(out, height, width)

    def warp_affine(self, matrix: np.ndarray, height: int, width: int) -> "BitmapMasks":
        """Apply a 2x3 or 3x3 affine matrix (output = M @ input), nearest neighbour."""
        m = np.asarray(matrix, np.float64)[:2]
        if len(self) == 0:
            return BitmapMasks(np.zeros((0, height, width), np.uint8), height, width)
        out = np.stack([cv2.warpAffine(x, m, (width, height), flags=cv2.INTER_NEAREST, borderValue=0) for x in self.masks])
        return BitmapMasks(out, height, width)
