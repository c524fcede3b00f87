"""Drawing panoptic segmentation: stuff regions filled in their class colour and labelled,
thing segments filled in a per-instance shade of their class colour and outlined."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

from det.core.vis.draw import _put_label, line_style
from det.core.vis.palette import color_for, to_bgr


def _shade(rgb: tuple[int, int, int], k: int) -> tuple[int, int, int]:
    """A per-instance variation of a class colour (alternating lighter/darker)."""
    f = 1.0 + (0.25 if k % 2 else -0.25) * ((k // 2) % 3 + 1) / 3
    return tuple(int(np.clip(c * f, 0, 255)) for c in rgb)  # type: ignore[return-value]


def _inside_point(mask: np.ndarray) -> tuple[int, int]:
    """The pixel of `mask` farthest from its border (a label never sits outside the region)."""
    dist = cv2.distanceTransform(np.pad(mask.astype(np.uint8), 1), cv2.DIST_L2, 3)[1:-1, 1:-1]
    y, x = np.unravel_index(int(np.argmax(dist)), dist.shape)
    return int(x), int(y)


def draw_panoptic(img: np.ndarray, sem: np.ndarray, thing_masks: np.ndarray | None, thing_labels: Sequence[int],
                  classes: Sequence[str], palette: Sequence[Sequence[int]], num_things: int, alpha: float = 0.5,
                  ignore: int = 255) -> np.ndarray:
    """A copy of BGR `img` with stuff classes of the semantic map `sem` (labels >= num_things)
    filled and named, and thing masks (N, H, W) filled, outlined and named."""
    out = img.copy()
    _, font_scale = line_style(*img.shape[:2])
    overlay = out.copy()
    stuff_labels = [int(v) for v in np.unique(sem) if int(v) != ignore and int(v) >= num_things]
    for label in stuff_labels:
        overlay[sem == label] = to_bgr(color_for(label, palette))
    masks = np.zeros((0, *img.shape[:2]), bool) if thing_masks is None else np.asarray(thing_masks).astype(bool)
    for k, (mask, label) in enumerate(zip(masks, thing_labels)):
        overlay[mask] = to_bgr(_shade(color_for(int(label), palette), k))
    out = cv2.addWeighted(overlay, alpha, out, 1 - alpha, 0)
    for k, (mask, label) in enumerate(zip(masks, thing_labels)):
        contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(out, contours, -1, (255, 255, 255), 1, cv2.LINE_AA)
    for label in stuff_labels:
        x, y = _inside_point(sem == label)
        _put_label(out, classes[label], x, y, to_bgr(color_for(label, palette)), font_scale)
    for k, (mask, label) in enumerate(zip(masks, thing_labels)):
        if mask.any():
            ys, xs = np.nonzero(mask)
            _put_label(out, classes[int(label)], int(xs.min()), int(ys.min()), to_bgr(color_for(int(label), palette)), font_scale)
    return out


def draw_panoptic_prediction(img: np.ndarray, pred: Any, classes: Sequence[str], num_things: int,
                             palette: Sequence[Sequence[int]] | None = None) -> np.ndarray:
    """`draw_panoptic` of a `PanopticPrediction`: its stuff segments by class, its thing
    segments one by one (in segment order); VOID pixels are left undrawn."""
    from det.core.vis.palette import get_palette

    palette = get_palette(len(classes), palette)
    seg_map = np.asarray(pred.seg_map)
    sem = np.full(seg_map.shape, 255, np.int64)
    masks, labels = [], []
    for seg in pred.segments:
        region = seg_map == int(seg["id"])
        if seg.get("isthing"):
            masks.append(region)
            labels.append(int(seg["label"]))
        else:
            sem[region] = int(seg["label"])
    stack = np.stack(masks) if masks else None
    return draw_panoptic(img, sem, stack, labels, classes, palette, num_things)
