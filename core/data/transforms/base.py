"""Transform protocol, Compose and the shared box bookkeeping of geometric transforms.

A transform is a callable taking the record dict (keys in docs/architecture.md "Data records")
and returning it (possibly a new dict) or None to reject the sample (the dataset then draws
another one). Transforms never modify arrays they received in place: the Mosaic/MixUp caches
share image arrays between records.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


class Transform:
    """Base class: subclasses implement `transform(results)`."""

    def __call__(self, results: dict) -> dict | None:
        return self.transform(results)

    def transform(self, results: dict) -> dict | None:  # pragma: no cover - abstract
        raise TypeError(f"{type(self).__name__} does not implement transform()")

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({args})"


class Compose:
    """Apply transforms in order; stop at the first that returns None."""

    def __init__(self, transforms: Sequence[Any]) -> None:
        self.transforms = list(transforms)

    def __call__(self, results: dict) -> dict | None:
        for t in self.transforms:
            results = t(results)
            if results is None:
                return None
        return results

    def bind_dataset(self, dataset: Any) -> None:
        """Give mixing transforms (Mosaic, MixUp) access to the dataset and to the transforms
        that run before them, so they can load extra samples the same way."""
        for i, t in enumerate(self.transforms):
            if hasattr(t, "bind_dataset"):
                t.bind_dataset(dataset, Compose(self.transforms[:i]))

    def __len__(self) -> int:
        return len(self.transforms)

    def __repr__(self) -> str:
        return "Compose(\n  " + ",\n  ".join(map(repr, self.transforms)) + "\n)"


# ---------------------------------------------------------------------------------------------
# helpers shared by the geometric transforms

GT_KEYS = ("gt_bboxes", "gt_labels", "gt_ignore")


def num_gt(results: dict) -> int:
    b = results.get("gt_bboxes")
    return 0 if b is None else len(b)


def keep_gt(results: dict, keep: np.ndarray) -> None:
    """Index every ground-truth field with the boolean/int array `keep`."""
    for k in GT_KEYS:
        if k in results and results[k] is not None:
            results[k] = results[k][keep]
    if results.get("gt_masks") is not None:
        results["gt_masks"] = results["gt_masks"][keep]


def map_seg(results: dict, fn: Any) -> None:
    """Apply `fn` to the semantic map `gt_seg_map` when the record has one."""
    if results.get("gt_seg_map") is not None:
        results["gt_seg_map"] = np.ascontiguousarray(fn(results["gt_seg_map"]))


def clip_xyxy(boxes: np.ndarray, h: int, w: int) -> np.ndarray:
    out = boxes.copy()
    np.clip(out[:, 0::2], 0, w, out=out[:, 0::2])
    np.clip(out[:, 1::2], 0, h, out=out[:, 1::2])
    return out


def valid_boxes(boxes: np.ndarray, min_size: float = 0.0) -> np.ndarray:
    """Boxes with positive width and height (above `min_size`)."""
    return ((boxes[:, 2] - boxes[:, 0]) > min_size) & ((boxes[:, 3] - boxes[:, 1]) > min_size)


def update_homography(results: dict, matrix: np.ndarray) -> None:
    """Compose the 3x3 matrix mapping original-image points to current ones."""
    prev = results.get("homography_matrix")
    results["homography_matrix"] = matrix if prev is None else matrix @ prev


def as_pair(value: Any, name: str) -> tuple[int, int]:
    """An int or a 2-sequence -> (a, b) ints."""
    if isinstance(value, (int, float)):
        return int(value), int(value)
    if isinstance(value, Sequence) and len(value) == 2:
        return int(value[0]), int(value[1])
    raise ValueError(f"{name}: expected a number or a pair, got {value!r}")


def pad_value(pad_val: Any, key: str = "img") -> Any:
    """MMDetection-style pad_val: a number, a triple, or {img: ..., seg: ...}."""
    if isinstance(pad_val, dict):
        pad_val = pad_val.get(key, 0)
    if isinstance(pad_val, (list, tuple)):
        return tuple(float(v) for v in pad_val)
    return float(pad_val)


def mask_presence(results: dict) -> np.ndarray | None:
    """Which instances have a non-empty mask (None without masks); call before a transform
    that may cut masks, then `sync_boxes_with_masks` after it."""
    m = results.get("gt_masks")
    return None if m is None else m.areas > 0


def sync_boxes_with_masks(results: dict, had_mask: np.ndarray | None) -> None:
    """Instances that had a mask get their box from the (cut) mask, so box and mask agree;
    those whose mask vanished are dropped; mask-less instances keep their clipped box."""
    m = results.get("gt_masks")
    if m is None or had_mask is None or not len(had_mask):
        return
    areas = m.areas
    use = had_mask & (areas > 0)
    boxes = results["gt_bboxes"].copy()
    boxes[use] = m.get_bboxes()[use]
    results["gt_bboxes"] = boxes
    keep_gt(results, ~(had_mask & (areas == 0)))


def filled(h: int, w: int, value: Any) -> np.ndarray:
    """An (h, w, 3) uint8 canvas of one colour (a number or a BGR triple). Broadcasting a
    3-vector over a large array is slow in numpy; a scalar fill or a tile is a memset/memcpy."""
    vals = value if isinstance(value, tuple) else (value,) * 3
    vals = [int(round(float(v))) for v in vals]
    if vals[0] == vals[1] == vals[2]:
        return np.full((h, w, 3), vals[0], np.uint8)
    return np.tile(np.array(vals, np.uint8), h * w).reshape(h, w, 3)
