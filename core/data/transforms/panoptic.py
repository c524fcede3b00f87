"""LoadPanopticAnnotations: thing instances and the semantic map of a COCO panoptic record."""
from __future__ import annotations

import numpy as np

from det.core.data.transforms.base import Transform
from det.core.errors import DataError
from det.core.structures.bitmap_masks import BitmapMasks
from det.core.structures.panoptic import IGNORE_LABEL, VOID


class LoadPanopticAnnotations(Transform):
    """Read the record's segment PNG into `gt_bboxes`/`gt_labels`/`gt_ignore` (crowd)/`gt_masks`
    of the thing segments and `gt_seg_map` (H, W) uint8: every segment's label (things and
    stuff, as MMDetection's LoadPanopticAnnotations), VOID and unselected categories
    `ignore_label` (255). With `with_bbox`, boxes come from the masks, so they match the PNG.
    A segment of the JSON absent from the PNG, or a PNG id without a segment, is an error."""

    def __init__(self, with_bbox: bool = True, with_label: bool = True, with_mask: bool = True,
                 with_seg: bool = True, ignore_label: int = IGNORE_LABEL) -> None:
        self.with_bbox, self.with_label, self.with_mask, self.with_seg = with_bbox, with_label, with_mask, with_seg
        self.ignore_label = int(ignore_label)

    def transform(self, results: dict) -> dict:
        from det.core.data.panoptic_io import read_segment_ids

        path = results.get("seg_map_path")
        h, w = results.get("ori_shape") or (results["height"], results["width"])
        if path is None:  # an image without annotation (test-dev): nothing to load
            return self._empty(results, h, w)
        ids = read_segment_ids(path)
        if ids.shape != (h, w):
            raise DataError(f"{path}: segment PNG is {ids.shape[1]}x{ids.shape[0]} but the image is {w}x{h}")
        segments = results.get("segments_info", [])
        self._check_ids(path, ids, [s["id"] for s in segments] + list(results.get("void_segment_ids", [])))
        masks = {s["id"]: ids == s["id"] for s in segments}
        things = [s for s in segments if s["is_thing"]]
        if self.with_mask:
            results["gt_masks"] = BitmapMasks([masks[s["id"]] for s in things], h, w)
        if self.with_bbox:
            results["gt_bboxes"] = np.array([_box(masks[s["id"]]) for s in things], np.float32).reshape(-1, 4)
            results["gt_ignore"] = np.array([bool(s["iscrowd"]) for s in things], bool)
        if self.with_label:
            results["gt_labels"] = np.array([s["category"] for s in things], np.int64)
        if self.with_seg:
            sem = np.full((h, w), self.ignore_label, np.uint8)
            for s in segments:
                sem[masks[s["id"]]] = s["category"]
            results["gt_seg_map"] = sem
        return results

    def _check_ids(self, path: str, ids: np.ndarray, listed: list[int]) -> None:
        present = set(np.unique(ids).tolist()) - {VOID}
        missing = sorted(set(listed) - present)
        if missing:
            raise DataError(f"{path}: segment id {missing[0]} of segments_info is not in the PNG")
        stray = sorted(present - set(listed))
        if stray:
            raise DataError(f"{path}: PNG segment id {stray[0]} has no entry in segments_info")

    def _empty(self, results: dict, h: int, w: int) -> dict:
        if self.with_mask:
            results["gt_masks"] = BitmapMasks([], h, w)
        if self.with_bbox:
            results["gt_bboxes"] = np.zeros((0, 4), np.float32)
            results["gt_ignore"] = np.zeros(0, bool)
        if self.with_label:
            results["gt_labels"] = np.zeros(0, np.int64)
        if self.with_seg:
            results["gt_seg_map"] = np.full((h, w), self.ignore_label, np.uint8)
        return results


def _box(mask: np.ndarray) -> list[float]:
    ys, xs = np.nonzero(mask)
    return [float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)]
