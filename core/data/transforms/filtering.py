"""FilterAnnotations: drop tiny or empty ground truth after augmentation."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from det.core.data.transforms.base import Transform, as_pair, keep_gt, num_gt


class FilterAnnotations(Transform):
    """Keep instances whose box is at least `min_gt_bbox_wh` (w, h) (with `by_box`) and whose
    mask has at least `min_gt_mask_area` pixels (with `by_mask`). `keep_empty` keeps
    MMDetection's meaning: when True and nothing is left, the sample is rejected (None) so the
    dataset draws another; when False an image with no instances passes on."""

    def __init__(self, min_gt_bbox_wh: Sequence[float] = (1.0, 1.0), min_gt_mask_area: int = 1, by_box: bool = True,
                 by_mask: bool = False, keep_empty: bool = True) -> None:
        wh = as_pair(min_gt_bbox_wh, "min_gt_bbox_wh") if isinstance(min_gt_bbox_wh, (int, float)) else min_gt_bbox_wh
        self.min_gt_bbox_wh = (float(wh[0]), float(wh[1]))
        self.min_gt_mask_area = min_gt_mask_area
        self.by_box = by_box
        self.by_mask = by_mask
        self.keep_empty = keep_empty

    def transform(self, results: dict) -> dict | None:
        n = num_gt(results)
        if n == 0:
            return results
        keep = np.ones(n, bool)
        if self.by_box:
            b = results["gt_bboxes"]
            keep &= ((b[:, 2] - b[:, 0]) >= self.min_gt_bbox_wh[0]) & ((b[:, 3] - b[:, 1]) >= self.min_gt_bbox_wh[1])
        if self.by_mask and results.get("gt_masks") is not None:
            keep &= results["gt_masks"].areas >= self.min_gt_mask_area
        if not keep.any() and self.keep_empty:
            return None
        keep_gt(results, keep)
        return results
