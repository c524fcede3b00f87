"""Geometric transforms: Resize, RandomResize, RandomFlip, RandomCrop, Pad, RandomAffine,
MinIoURandomCrop, Expand. Each keeps boxes, masks, labels and ignore flags consistent and
records how to map predictions back (`scale_factor`, `flip_direction`, `pad_shape`,
`homography_matrix`)."""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

from det.core.data.transforms.base import (
    Transform, as_pair, clip_xyxy, filled, keep_gt, map_seg, mask_presence, num_gt, pad_value, sync_boxes_with_masks,
    update_homography, valid_boxes,
)
from det.core.data.transforms.rng import rng
from det.core.structures.boxes import box_overlaps

_INTERP = {"nearest": cv2.INTER_NEAREST, "bilinear": cv2.INTER_LINEAR, "bicubic": cv2.INTER_CUBIC,
           "area": cv2.INTER_AREA, "lanczos": cv2.INTER_LANCZOS4}


def rescale_size(w: int, h: int, scale: tuple[int, int]) -> tuple[int, int]:
    """Keep-ratio target (w, h): the long edge fits max(scale), the short edge min(scale)."""
    long_edge, short_edge = max(scale), min(scale)
    factor = min(long_edge / max(h, w), short_edge / min(h, w))
    return int(w * factor + 0.5), int(h * factor + 0.5)


def _interp(name: str) -> int:
    if name not in _INTERP:
        raise ValueError(f"interpolation must be one of {sorted(_INTERP)}, got '{name}'")
    return _INTERP[name]


class Resize(Transform):
    """Resize to `scale` (w, h) (or by `scale_factor`). With `keep_ratio`, the image is scaled
    as large as possible so that its long edge <= max(scale) and short edge <= min(scale)."""

    def __init__(self, scale: Any = None, scale_factor: Any = None, keep_ratio: bool = False,
                 clip_object_border: bool = True, interpolation: str = "bilinear") -> None:
        if (scale is None) == (scale_factor is None):
            raise ValueError("Resize needs exactly one of 'scale' and 'scale_factor'")
        self.scale = None if scale is None else as_pair(scale, "scale")
        self.scale_factor = None if scale_factor is None else (
            (float(scale_factor), float(scale_factor)) if isinstance(scale_factor, (int, float)) else tuple(map(float, scale_factor)))
        self.keep_ratio = keep_ratio
        self.clip_object_border = clip_object_border
        self.interpolation = interpolation
        self._flag = _interp(interpolation)

    def target_size(self, w: int, h: int) -> tuple[int, int]:
        if self.scale is not None:
            return rescale_size(w, h, self.scale) if self.keep_ratio else self.scale
        sx, sy = self.scale_factor
        if self.keep_ratio:
            sy = sx
        return int(w * sx + 0.5), int(h * sy + 0.5)

    def transform(self, results: dict) -> dict:
        return resize_to(results, *self.target_size(results["img"].shape[1], results["img"].shape[0]),
                         self._flag, self.clip_object_border)


def resize_to(results: dict, new_w: int, new_h: int, flag: int = cv2.INTER_LINEAR, clip: bool = True) -> dict:
    img = results["img"]
    h, w = img.shape[:2]
    new_w, new_h = max(1, int(new_w)), max(1, int(new_h))
    if (new_w, new_h) != (w, h):
        img = cv2.resize(img, (new_w, new_h), interpolation=flag)
    sx, sy = new_w / w, new_h / h
    results["img"] = img
    results["img_shape"] = (new_h, new_w)
    prev = results.get("scale_factor") or (1.0, 1.0)
    results["scale_factor"] = (prev[0] * sx, prev[1] * sy)
    if num_gt(results):
        b = results["gt_bboxes"] * np.array([sx, sy, sx, sy], np.float32)
        results["gt_bboxes"] = clip_xyxy(b, new_h, new_w) if clip else b
    elif results.get("gt_bboxes") is not None:
        results["gt_bboxes"] = results["gt_bboxes"].copy()
    if results.get("gt_masks") is not None:
        had_mask = mask_presence(results)
        results["gt_masks"] = results["gt_masks"].resize(new_h, new_w)
        # nearest-neighbour sampling can skip a thin tip when shrinking: boxes follow the masks
        sync_boxes_with_masks(results, had_mask)
    if (new_w, new_h) != (w, h):
        map_seg(results, lambda m: cv2.resize(m, (new_w, new_h), interpolation=cv2.INTER_NEAREST_EXACT))  # as masks
    update_homography(results, np.diag([sx, sy, 1.0]))
    return results


class RandomResize(Transform):
    """Resize to a random scale: `scale` (w, h) times a ratio drawn from `ratio_range`, or with
    `scale` a pair of (w, h) bounds, each edge drawn between them."""

    def __init__(self, scale: Any, ratio_range: Sequence[float] | None = None, keep_ratio: bool = True,
                 clip_object_border: bool = True, interpolation: str = "bilinear") -> None:
        if ratio_range is not None:
            self.scale = [as_pair(scale, "scale")]
            if len(ratio_range) != 2 or ratio_range[0] > ratio_range[1]:
                raise ValueError(f"ratio_range must be (low, high), got {ratio_range!r}")
        else:
            if not (isinstance(scale, Sequence) and len(scale) == 2 and all(isinstance(s, Sequence) for s in scale)):
                raise ValueError("RandomResize needs ratio_range, or scale as two (w, h) bounds")
            self.scale = [as_pair(s, "scale") for s in scale]
        self.ratio_range = None if ratio_range is None else (float(ratio_range[0]), float(ratio_range[1]))
        self.keep_ratio = keep_ratio
        self.clip_object_border = clip_object_border
        self.interpolation = interpolation
        self._flag = _interp(interpolation)

    def sample_scale(self) -> tuple[int, int]:
        r = rng()
        if self.ratio_range is not None:
            ratio = r.uniform(*self.ratio_range)
            w, h = self.scale[0]
            return int(w * ratio), int(h * ratio)
        (w0, h0), (w1, h1) = self.scale
        long_edge = int(r.integers(min(max(w0, h0), max(w1, h1)), max(max(w0, h0), max(w1, h1)) + 1))
        short_edge = int(r.integers(min(min(w0, h0), min(w1, h1)), max(min(w0, h0), min(w1, h1)) + 1))
        return long_edge, short_edge

    def transform(self, results: dict) -> dict:
        scale = self.sample_scale()
        h, w = results["img"].shape[:2]
        new_w, new_h = rescale_size(w, h, scale) if self.keep_ratio else scale
        return resize_to(results, new_w, new_h, self._flag, self.clip_object_border)


_FLIP_SET = {None: frozenset(), "horizontal": frozenset("h"), "vertical": frozenset("v"), "diagonal": frozenset("hv")}
_SET_FLIP = {v: k for k, v in _FLIP_SET.items()}


class RandomFlip(Transform):
    """Flip with probability `prob`: 'horizontal', 'vertical' or 'diagonal' (both). With a list
    of directions, `prob` is the total (split evenly) or a list of per-direction probabilities."""

    def __init__(self, prob: float | Sequence[float] = 0.5, direction: str | Sequence[str] = "horizontal") -> None:
        dirs = [direction] if isinstance(direction, str) else list(direction)
        for d in dirs:
            if d not in ("horizontal", "vertical", "diagonal"):
                raise ValueError(f"direction must be horizontal, vertical or diagonal, got '{d}'")
        if isinstance(prob, (int, float)):
            probs = [float(prob) / len(dirs)] * len(dirs)
        else:
            probs = [float(p) for p in prob]
            if len(probs) != len(dirs):
                raise ValueError("prob and direction lists must have the same length")
        if sum(probs) > 1 + 1e-9 or min(probs) < 0:
            raise ValueError(f"flip probabilities must be >= 0 and sum to <= 1, got {probs}")
        self.prob = prob
        self.direction = direction
        self._dirs, self._probs = dirs, probs

    def transform(self, results: dict) -> dict:
        u = rng().random()
        acc = 0.0
        for d, p in zip(self._dirs, self._probs):
            acc += p
            if u < acc:
                return flip(results, d)
        return results


def flip(results: dict, direction: str) -> dict:
    img = results["img"]
    h, w = img.shape[:2]
    if direction == "horizontal":
        img = img[:, ::-1]
        m = np.array([[-1, 0, w], [0, 1, 0], [0, 0, 1]], np.float64)
    elif direction == "vertical":
        img = img[::-1]
        m = np.array([[1, 0, 0], [0, -1, h], [0, 0, 1]], np.float64)
    else:
        img = img[::-1, ::-1]
        m = np.array([[-1, 0, w], [0, -1, h], [0, 0, 1]], np.float64)
    results["img"] = img
    if results.get("gt_bboxes") is not None:
        b = results["gt_bboxes"]
        out = b.copy()
        if direction in ("horizontal", "diagonal"):
            out[:, 0], out[:, 2] = w - b[:, 2], w - b[:, 0]
        if direction in ("vertical", "diagonal"):
            out[:, 1], out[:, 3] = h - b[:, 3], h - b[:, 1]
        results["gt_bboxes"] = out
    if results.get("gt_masks") is not None:
        results["gt_masks"] = results["gt_masks"].flip(direction)
    map_seg(results, lambda m: m[:, ::-1] if direction == "horizontal" else m[::-1] if direction == "vertical" else m[::-1, ::-1])
    results["flip_direction"] = _SET_FLIP[_FLIP_SET[results.get("flip_direction")] ^ _FLIP_SET[direction]]
    results["flip"] = results["flip_direction"] is not None
    update_homography(results, m)
    return results


def crop(results: dict, x1: int, y1: int, x2: int, y2: int, clip: bool = True, recompute_bbox: bool | None = None) -> dict:
    """Crop the image to [x1, x2) x [y1, y2) and move ground truth; boxes left with no area
    are dropped. With masks (unless `recompute_bbox` is False) boxes of masked instances are
    recomputed from the cut masks, so a box never extends past the visible part."""
    had_mask = mask_presence(results) if recompute_bbox is not False else None
    results["img"] = results["img"][y1:y2, x1:x2]
    h, w = y2 - y1, x2 - x1
    results["img_shape"] = (h, w)
    if results.get("gt_masks") is not None:
        results["gt_masks"] = results["gt_masks"].crop(x1, y1, x2, y2)
    map_seg(results, lambda m: m[y1:y2, x1:x2])
    if results.get("gt_bboxes") is not None:
        b = results["gt_bboxes"] - np.array([x1, y1, x1, y1], np.float32)
        if clip:
            b = clip_xyxy(b, h, w)
        results["gt_bboxes"] = b
        sync_boxes_with_masks(results, had_mask)
        keep_gt(results, valid_boxes(clip_xyxy(results["gt_bboxes"], h, w)))
    update_homography(results, np.array([[1, 0, -x1], [0, 1, -y1], [0, 0, 1]], np.float64))
    return results


class RandomCrop(Transform):
    """Crop a random window of `crop_size` (w, h) (`crop_type` 'absolute', 'absolute_range',
    'relative' or 'relative_range'). Returns None (sample rejected) when boxes existed and none
    survive, unless `allow_negative_crop`. `recompute_bbox` (default: when masks are loaded)
    takes boxes from the cut masks."""

    def __init__(self, crop_size: Sequence[float], crop_type: str = "absolute", allow_negative_crop: bool = False,
                 recompute_bbox: bool | None = None, bbox_clip_border: bool = True) -> None:
        if crop_type not in ("absolute", "absolute_range", "relative", "relative_range"):
            raise ValueError(f"unknown crop_type '{crop_type}'")
        if len(crop_size) != 2:
            raise ValueError(f"crop_size must be (w, h), got {crop_size!r}")
        if crop_type.startswith("relative") and not all(0 < c <= 1 for c in crop_size):
            raise ValueError(f"relative crop_size must lie in (0, 1], got {crop_size!r}")
        self.crop_size = tuple(crop_size)
        self.crop_type = crop_type
        self.allow_negative_crop = allow_negative_crop
        self.recompute_bbox = recompute_bbox
        self.bbox_clip_border = bbox_clip_border

    def crop_hw(self, h: int, w: int) -> tuple[int, int]:
        c = self.crop_size
        if self.crop_type == "absolute":
            return min(int(c[1]), h), min(int(c[0]), w)
        if self.crop_type == "absolute_range":
            lo, hi = int(c[0]), int(c[1])
            return int(rng().integers(min(h, lo), min(h, hi) + 1)), int(rng().integers(min(w, lo), min(w, hi) + 1))
        if self.crop_type == "relative":
            return int(h * c[1] + 0.5), int(w * c[0] + 0.5)
        rw, rh = np.asarray(c, np.float64) + rng().random(2) * (1 - np.asarray(c, np.float64))
        return int(h * rh + 0.5), int(w * rw + 0.5)

    def transform(self, results: dict) -> dict | None:
        h, w = results["img"].shape[:2]
        ch, cw = self.crop_hw(h, w)
        oy = int(rng().integers(0, max(h - ch, 0) + 1))
        ox = int(rng().integers(0, max(w - cw, 0) + 1))
        had = num_gt(results)
        results = crop(results, ox, oy, ox + cw, oy + ch, self.bbox_clip_border, self.recompute_bbox)
        if had and not num_gt(results) and not self.allow_negative_crop:
            return None
        return results


class Pad(Transform):
    """Pad bottom/right to `size` (w, h), to a multiple of `size_divisor`, or to a square.
    `pad_val` is a number, a BGR triple or {img: ...}. Masks are padded with zeros."""

    def __init__(self, size: Any = None, size_divisor: int | None = None, pad_to_square: bool = False,
                 pad_val: Any = 0) -> None:
        if size is None and size_divisor is None and not pad_to_square:
            raise ValueError("Pad needs 'size', 'size_divisor' or 'pad_to_square'")
        self.size = None if size is None else as_pair(size, "size")
        self.size_divisor = size_divisor
        self.pad_to_square = pad_to_square
        self.pad_val = pad_val
        self._val = pad_value(pad_val)

    def transform(self, results: dict) -> dict:
        img = results["img"]
        h, w = img.shape[:2]
        th, tw = h, w
        if self.pad_to_square:
            th = tw = max(h, w)
        if self.size is not None:
            tw, th = max(tw, self.size[0]), max(th, self.size[1])
        if self.size_divisor:
            d = int(self.size_divisor)
            th, tw = int(math.ceil(th / d)) * d, int(math.ceil(tw / d)) * d
        if (th, tw) != (h, w):
            val = self._val if isinstance(self._val, tuple) else (self._val,) * 3
            img = cv2.copyMakeBorder(img, 0, th - h, 0, tw - w, cv2.BORDER_CONSTANT, value=val)
            if results.get("gt_masks") is not None:
                results["gt_masks"] = results["gt_masks"].pad(th, tw)
            seg_val = int(self.pad_val.get("seg", 255)) if isinstance(self.pad_val, dict) else 255
            map_seg(results, lambda m: cv2.copyMakeBorder(m, 0, th - h, 0, tw - w, cv2.BORDER_CONSTANT, value=seg_val))
        results["img"] = img
        results["pad_shape"] = (th, tw)
        results.setdefault("img_shape", (h, w))
        return results


class RandomAffine(Transform):
    """Random rotation, scaling, shear and translation (YOLOX style) into an output of the
    input size plus 2 x `border` (w, h). Boxes are the transformed corners' hull (or the warped
    masks' boxes when masks are present), clipped; tiny, squashed or mostly lost boxes are
    dropped."""

    def __init__(self, max_rotate_degree: float = 10.0, max_translate_ratio: float = 0.1,
                 scaling_ratio_range: Sequence[float] = (0.5, 1.5), max_shear_degree: float = 2.0,
                 border: Sequence[int] = (0, 0), border_val: Any = (114, 114, 114), bbox_clip_border: bool = True,
                 min_bbox_size: float = 2.0, min_area_ratio: float = 0.1, max_aspect_ratio: float = 20.0) -> None:
        if not 0 <= max_translate_ratio <= 1:
            raise ValueError("max_translate_ratio must lie in [0, 1]")
        if scaling_ratio_range[0] > scaling_ratio_range[1] or scaling_ratio_range[0] <= 0:
            raise ValueError(f"scaling_ratio_range must be (low, high) > 0, got {scaling_ratio_range!r}")
        self.max_rotate_degree = float(max_rotate_degree)
        self.max_translate_ratio = float(max_translate_ratio)
        self.scaling_ratio_range = tuple(map(float, scaling_ratio_range))
        self.max_shear_degree = float(max_shear_degree)
        self.border = as_pair(border, "border")
        self.border_val = border_val
        self.bbox_clip_border = bbox_clip_border
        self.min_bbox_size = min_bbox_size
        self.min_area_ratio = min_area_ratio
        self.max_aspect_ratio = max_aspect_ratio
        self._val = pad_value(border_val)

    def matrix(self, h: int, w: int, out_h: int, out_w: int) -> tuple[np.ndarray, float]:
        r = rng()
        angle = math.radians(r.uniform(-self.max_rotate_degree, self.max_rotate_degree))
        scale = r.uniform(*self.scaling_ratio_range)
        shx = math.tan(math.radians(r.uniform(-self.max_shear_degree, self.max_shear_degree)))
        shy = math.tan(math.radians(r.uniform(-self.max_shear_degree, self.max_shear_degree)))
        tx = r.uniform(0.5 - self.max_translate_ratio, 0.5 + self.max_translate_ratio) * out_w
        ty = r.uniform(0.5 - self.max_translate_ratio, 0.5 + self.max_translate_ratio) * out_h
        centre = np.array([[1, 0, -w / 2], [0, 1, -h / 2], [0, 0, 1]])
        c, s = math.cos(angle), math.sin(angle)
        rot_scale = np.array([[c * scale, -s * scale, 0], [s * scale, c * scale, 0], [0, 0, 1]])
        shear = np.array([[1, shx, 0], [shy, 1, 0], [0, 0, 1]])
        move = np.array([[1, 0, tx], [0, 1, ty], [0, 0, 1]])
        return move @ shear @ rot_scale @ centre, scale

    def transform(self, results: dict) -> dict:
        img = results["img"]
        h, w = img.shape[:2]
        out_h, out_w = h + 2 * self.border[1], w + 2 * self.border[0]
        m, scale = self.matrix(h, w, out_h, out_w)
        val = self._val if isinstance(self._val, tuple) else (self._val,) * 3
        results["img"] = cv2.warpAffine(img, m[:2], (out_w, out_h), flags=cv2.INTER_LINEAR, borderValue=val)
        results["img_shape"] = (out_h, out_w)
        if results.get("gt_bboxes") is not None and num_gt(results):
            b = results["gt_bboxes"].astype(np.float64)
            corners = np.stack([b[:, [0, 1]], b[:, [2, 1]], b[:, [0, 3]], b[:, [2, 3]]], 1)  # N, 4, 2
            pts = corners @ m[:2, :2].T + m[:2, 2]
            new = np.concatenate([pts.min(1), pts.max(1)], 1).astype(np.float32)
            vanished = np.zeros(len(new), bool)
            if results.get("gt_masks") is not None:
                # masked instances take the warped mask's box (tight under rotation)
                had_mask = mask_presence(results)
                results["gt_masks"] = results["gt_masks"].warp_affine(m, out_h, out_w)
                areas = results["gt_masks"].areas
                use = had_mask & (areas > 0)
                new[use] = results["gt_masks"].get_bboxes()[use]
                vanished = had_mask & (areas == 0)
            if self.bbox_clip_border:
                new = clip_xyxy(new, out_h, out_w)
            results["gt_bboxes"] = new
            keep_gt(results, ~vanished & self._candidates(b, new, scale))
        elif results.get("gt_masks") is not None:
            results["gt_masks"] = results["gt_masks"].warp_affine(m, out_h, out_w)
        map_seg(results, lambda s: cv2.warpAffine(s, m[:2], (out_w, out_h), flags=cv2.INTER_NEAREST, borderValue=255))
        update_homography(results, m)
        return results

    def _candidates(self, old: np.ndarray, new: np.ndarray, scale: float) -> np.ndarray:
        ow, oh = old[:, 2] - old[:, 0], old[:, 3] - old[:, 1]
        nw, nh = new[:, 2] - new[:, 0], new[:, 3] - new[:, 1]
        aspect = np.maximum(nw / (nh + 1e-16), nh / (nw + 1e-16))
        return ((nw > self.min_bbox_size) & (nh > self.min_bbox_size)
                & (nw * nh / (ow * oh * scale * scale + 1e-16) > self.min_area_ratio)
                & (aspect < self.max_aspect_ratio))


class MinIoURandomCrop(Transform):
    """SSD-style crop: pick a minimum IoU from `min_ious` (or no crop), then try random windows
    (aspect 1/2..2, each side >= min_crop_size) until every box overlaps the window by at least
    that IoU; keep boxes whose centre lies inside."""

    def __init__(self, min_ious: Sequence[float] = (0.1, 0.3, 0.5, 0.7, 0.9), min_crop_size: float = 0.3,
                 bbox_clip_border: bool = True, max_trials: int = 50) -> None:
        self.min_ious = tuple(float(x) for x in min_ious)
        self.min_crop_size = float(min_crop_size)
        self.bbox_clip_border = bbox_clip_border
        self.max_trials = max_trials

    def transform(self, results: dict) -> dict:
        r = rng()
        h, w = results["img"].shape[:2]
        boxes = results.get("gt_bboxes")
        modes = (1.0, *self.min_ious)
        while True:
            mode = modes[int(r.integers(len(modes)))]
            if mode == 1.0:
                return results
            for _ in range(self.max_trials):
                nw = r.uniform(self.min_crop_size * w, w)
                nh = r.uniform(self.min_crop_size * h, h)
                if nh / nw < 0.5 or nh / nw > 2:
                    continue
                left, top = r.uniform(0, w - nw), r.uniform(0, h - nh)
                patch = np.array([int(left), int(top), int(left + nw), int(top + nh)])
                if patch[2] == patch[0] or patch[3] == patch[1]:
                    continue
                if boxes is not None and len(boxes):
                    ious = box_overlaps(patch[None], boxes, dtype=np.float32)[0]
                    if ious.min() < mode:
                        continue
                    cx = (boxes[:, 0] + boxes[:, 2]) / 2
                    cy = (boxes[:, 1] + boxes[:, 3]) / 2
                    inside = (cx > patch[0]) & (cy > patch[1]) & (cx < patch[2]) & (cy < patch[3])
                    if not inside.any():
                        continue
                    keep_gt(results, inside)
                return crop(results, *map(int, patch), clip=self.bbox_clip_border)


class Expand(Transform):
    """Zoom out (SSD): with probability `prob`, place the image at a random spot of a canvas
    `ratio` times larger (ratio from `ratio_range`) filled with `mean` (RGB when `to_rgb`)."""

    def __init__(self, mean: Sequence[float] = (0, 0, 0), to_rgb: bool = True, ratio_range: Sequence[float] = (1, 4),
                 prob: float = 0.5) -> None:
        self.mean = tuple(float(m) for m in mean)
        self.to_rgb = to_rgb
        self.ratio_range = (float(ratio_range[0]), float(ratio_range[1]))
        self.prob = prob
        fill = self.mean[::-1] if to_rgb else self.mean  # the canvas is BGR
        self._fill = np.array(fill, np.float64).round().clip(0, 255).astype(np.uint8)

    def transform(self, results: dict) -> dict:
        r = rng()
        if r.random() > self.prob:
            return results
        img = results["img"]
        h, w = img.shape[:2]
        ratio = r.uniform(*self.ratio_range)
        nh, nw = int(h * ratio), int(w * ratio)
        left, top = int(r.uniform(0, nw - w)), int(r.uniform(0, nh - h))
        canvas = filled(nh, nw, tuple(int(v) for v in self._fill))
        canvas[top:top + h, left:left + w] = img
        results["img"] = canvas
        results["img_shape"] = (nh, nw)
        if results.get("gt_bboxes") is not None:
            results["gt_bboxes"] = results["gt_bboxes"] + np.array([left, top, left, top], np.float32)
        if results.get("gt_masks") is not None:
            results["gt_masks"] = results["gt_masks"].pad(nh, nw, top, left)
        map_seg(results, lambda s: cv2.copyMakeBorder(s, top, nh - h - top, left, nw - w - left, cv2.BORDER_CONSTANT,
                                                      value=255))
        update_homography(results, np.array([[1, 0, left], [0, 1, top], [0, 0, 1]], np.float64))
        return results
