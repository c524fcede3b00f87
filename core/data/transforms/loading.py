"""LoadImage and LoadAnnotations: the first steps of every pipeline."""
from __future__ import annotations

import cv2
import numpy as np

from det.core.data.transforms.base import Transform
from det.core.errors import DataError
from det.core.log import get_logger
from det.core.structures.bitmap_masks import BitmapMasks

_FLAGS = {"color": cv2.IMREAD_COLOR, "grayscale": cv2.IMREAD_GRAYSCALE, "unchanged": cv2.IMREAD_UNCHANGED}


class LoadImage(Transform):
    """Read `img_path` with OpenCV as H x W x 3 uint8 BGR.

    An unreadable file raises DataError naming the path; with `skip_bad_images: true` it logs a
    warning with a running count and returns None so the dataset draws another sample.
    """

    def __init__(self, color_type: str = "color", skip_bad_images: bool = False) -> None:
        if color_type not in _FLAGS:
            raise ValueError(f"color_type must be one of {sorted(_FLAGS)}, got '{color_type}'")
        self.color_type = color_type
        self.skip_bad_images = skip_bad_images
        self.num_skipped = 0

    def transform(self, results: dict) -> dict | None:
        from det.core.inference.reader import read_image

        path = results["img_path"]
        img, why = read_image(str(path), _FLAGS[self.color_type])
        if img is None:
            if self.skip_bad_images:
                self.num_skipped += 1
                get_logger().warning("%s: cannot read image: %s, skipped (%d skipped so far)", path, why, self.num_skipped)
                return None
            raise DataError(f"{path}: cannot read image: {why} (set skip_bad_images: true on LoadImage to skip)")
        if img.ndim == 2:
            img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
        elif img.shape[2] == 4:
            img = cv2.cvtColor(img, cv2.COLOR_BGRA2BGR)
        h, w = img.shape[:2]
        results["img"] = img
        results["img_shape"] = (h, w)
        results["ori_shape"] = (h, w)
        results.setdefault("scale_factor", (1.0, 1.0))
        results.setdefault("flip_direction", None)
        return results


class LoadAnnotations(Transform):
    """Copy the dataset's instances into arrays: `gt_bboxes` (N, 4) float32 xyxy, `gt_labels`
    (N,) int64, `gt_ignore` (N,) bool and, with `with_mask`, `gt_masks` (BitmapMasks decoded
    from polygons or RLE at the image's size)."""

    def __init__(self, with_bbox: bool = True, with_label: bool = True, with_mask: bool = False,
                 poly2mask: bool = True) -> None:
        self.with_bbox = with_bbox
        self.with_label = with_label
        self.with_mask = with_mask
        self.poly2mask = poly2mask  # masks are always stored as bitmaps; kept for MMDetection presets

    def transform(self, results: dict) -> dict:
        instances = results.get("instances", [])
        n = len(instances)
        if self.with_bbox:
            results["gt_bboxes"] = np.array([i["bbox"] for i in instances], np.float32).reshape(n, 4)
            results["gt_ignore"] = np.array([bool(i.get("ignore_flag", False)) for i in instances], bool).reshape(n)
        if self.with_label:
            results["gt_labels"] = np.array([i["bbox_label"] for i in instances], np.int64).reshape(n)
        if self.with_mask:
            # masks are decoded at the original size; LoadAnnotations belongs before any resize
            h, w = results.get("ori_shape") or (results["height"], results["width"])
            if "height" in results and (h, w) != (results["height"], results["width"]):
                raise DataError(f"{results.get('img_path')}: image is {w}x{h} but the annotation says "
                                f"{results['width']}x{results['height']}")
            try:
                results["gt_masks"] = BitmapMasks.from_annotations([i.get("mask") for i in instances], h, w)
            except (ValueError, TypeError) as exc:
                raise DataError(f"{results.get('img_path')}: bad mask annotation ({exc})") from None
        return results
