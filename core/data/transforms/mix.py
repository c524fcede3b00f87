"""Multi-image transforms: Mosaic (4 images on a 2x canvas) and MixUp (YOLOX blend).

Extra images come from a per-process cache of recent records (MMDetection's CachedMosaic /
CachedMixUp behaviour, the default: no extra decoding) or, with `use_cache: false`, from the
dataset itself: the dataset binds itself when it builds its pipeline, and the extra samples go
through the transforms placed before the mixing step.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

from det.core.data.transforms.base import Transform, as_pair, clip_xyxy, filled, num_gt, pad_value, valid_boxes
from det.core.data.transforms.rng import rng
from det.core.errors import DataError
from det.core.structures.bitmap_masks import BitmapMasks


class _MixSource(Transform):
    """Where the extra images of a mixing transform come from (cache or dataset)."""

    def __init__(self, max_cached_images: int, random_pop: bool, use_cache: bool, min_cache: int) -> None:
        if use_cache and max_cached_images < min_cache:
            raise ValueError(f"max_cached_images must be >= {min_cache}, got {max_cached_images}")
        self.max_cached_images = max_cached_images
        self.random_pop = random_pop
        self.use_cache = use_cache
        self._min_cache = min_cache
        self._cache: list[dict] = []
        self._dataset: Any = None
        self._prefix: Any = None

    def bind_dataset(self, dataset: Any, prefix: Any) -> None:
        self._dataset, self._prefix = dataset, prefix

    def __getstate__(self) -> dict:
        # workers start with an empty cache; the dataset reference is re-bound by the dataset
        state = dict(self.__dict__)
        state["_cache"] = []
        return state

    def _push(self, results: dict) -> bool:
        """Add the record to the cache; True when enough records are cached to mix."""
        if results.get("gt_seg_map") is not None:
            raise DataError(f"{type(self).__name__} does not mix semantic maps (gt_seg_map of panoptic data); "
                            "remove it from this pipeline")
        if not self.use_cache:
            return True
        self._cache.append(dict(results))  # shallow: arrays are shared, never modified in place
        if len(self._cache) > self.max_cached_images:
            i = int(rng().integers(len(self._cache))) if self.random_pop else 0
            self._cache.pop(i)
        return len(self._cache) > self._min_cache

    def _draw(self) -> dict:
        if self.use_cache:
            return dict(self._cache[int(rng().integers(len(self._cache)))])
        if self._dataset is None:
            raise DataError(f"{type(self).__name__}: use_cache is false but no dataset is bound (build the pipeline through a dataset)")
        for _ in range(20):
            idx = int(rng().integers(len(self._dataset)))
            out = self._prefix(self._dataset.get_data_info(idx))
            if out is not None:
                return out
        raise DataError(f"{type(self).__name__}: could not load an extra sample after 20 tries")


def _gt(results: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = num_gt(results)
    b = results.get("gt_bboxes")
    return (np.zeros((0, 4), np.float32) if b is None else b,
            results.get("gt_labels", np.zeros(n, np.int64)), results.get("gt_ignore", np.zeros(n, bool)))


class Mosaic(_MixSource):
    """Combine the record with 3 others around a random centre of a (2h, 2w) canvas, `img_scale`
    = (w, h) being the size each image is first fitted to. Applied with probability `prob`."""

    def __init__(self, img_scale: Sequence[int] = (640, 640), center_ratio_range: Sequence[float] = (0.5, 1.5),
                 bbox_clip_border: bool = True, pad_val: Any = 114.0, prob: float = 1.0, max_cached_images: int = 40,
                 random_pop: bool = True, use_cache: bool = True) -> None:
        super().__init__(max_cached_images, random_pop, use_cache, 4)
        if not 0 <= prob <= 1:
            raise ValueError(f"prob must lie in [0, 1], got {prob}")
        self.img_scale = as_pair(img_scale, "img_scale")
        self.center_ratio_range = tuple(map(float, center_ratio_range))
        self.bbox_clip_border = bbox_clip_border
        self.pad_val = pad_val
        self.prob = prob
        self._val = pad_value(pad_val)

    def transform(self, results: dict) -> dict:
        if not self._push(results) or rng().random() > self.prob:
            return results
        others = [self._draw() for _ in range(3)]
        w, h = self.img_scale
        cw, ch = 2 * w, 2 * h
        canvas = filled(ch, cw, self._val)
        cx = int(rng().uniform(*self.center_ratio_range) * w)
        cy = int(rng().uniform(*self.center_ratio_range) * h)
        with_masks = results.get("gt_masks") is not None
        boxes, labels, ignores, masks, had = [], [], [], [], []
        for pos, rec in zip(("top_left", "top_right", "bottom_left", "bottom_right"), [results, *others]):
            img = rec["img"]
            ih, iw = img.shape[:2]
            s = min(h / ih, w / iw)
            nw, nh = max(1, int(iw * s)), max(1, int(ih * s))
            img = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_LINEAR)
            (x1, y1, x2, y2), (px1, py1, px2, py2) = _place(pos, cx, cy, nw, nh, cw, ch)
            canvas[y1:y2, x1:x2] = img[py1:py2, px1:px2]
            b, lab, ign = _gt(rec)
            sx, sy = nw / iw, nh / ih
            boxes.append(b * np.array([sx, sy, sx, sy], np.float32) + np.array([x1 - px1, y1 - py1] * 2, np.float32))
            labels.append(lab)
            ignores.append(ign)
            if with_masks:
                m = rec.get("gt_masks")
                m = m if m is not None else BitmapMasks(np.zeros((len(b), ih, iw), np.uint8), ih, iw)
                had.append(m.areas > 0)
                masks.append(m.resize(nh, nw).crop(px1, py1, px2, py2).pad(ch, cw, y1, x1))
        b = np.concatenate(boxes).astype(np.float32)
        if self.bbox_clip_border:
            b = clip_xyxy(b, ch, cw)
        vanished = np.zeros(len(b), bool)
        if with_masks:
            all_masks = BitmapMasks.cat(masks)
            b, vanished = _sync(b, all_masks, np.concatenate(had))
        keep = valid_boxes(clip_xyxy(b, ch, cw)) & ~vanished
        out = dict(results)
        out.update(img=canvas, img_shape=(ch, cw), gt_bboxes=b[keep], gt_labels=np.concatenate(labels)[keep],
                   gt_ignore=np.concatenate(ignores)[keep], homography_matrix=None)
        if with_masks:
            out["gt_masks"] = all_masks[keep]
        return out


def _place(pos: str, cx: int, cy: int, w: int, h: int, cw: int, ch: int):
    """Canvas window and the matching window of the (w, h) image for one mosaic quadrant."""
    if pos == "top_left":
        x1, y1, x2, y2 = max(cx - w, 0), max(cy - h, 0), cx, cy
        crop = (w - (x2 - x1), h - (y2 - y1), w, h)
    elif pos == "top_right":
        x1, y1, x2, y2 = cx, max(cy - h, 0), min(cx + w, cw), cy
        crop = (0, h - (y2 - y1), x2 - x1, h)
    elif pos == "bottom_left":
        x1, y1, x2, y2 = max(cx - w, 0), cy, cx, min(ch, cy + h)
        crop = (w - (x2 - x1), 0, w, y2 - y1)
    else:
        x1, y1, x2, y2 = cx, cy, min(cx + w, cw), min(ch, cy + h)
        crop = (0, 0, x2 - x1, y2 - y1)
    return (x1, y1, x2, y2), crop


class MixUp(_MixSource):
    """Blend the record 50/50 with another image that was fitted into `img_scale` (w, h),
    jittered in scale by `ratio_range`, flipped with `flip_ratio`, padded and randomly cropped
    to the record's size. Boxes of both images are kept. Applied with probability `prob`."""

    def __init__(self, img_scale: Sequence[int] = (640, 640), ratio_range: Sequence[float] = (0.5, 1.5),
                 flip_ratio: float = 0.5, pad_val: Any = 114.0, max_iters: int = 15, bbox_clip_border: bool = True,
                 prob: float = 1.0, max_cached_images: int = 20, random_pop: bool = True, use_cache: bool = True) -> None:
        super().__init__(max_cached_images, random_pop, use_cache, 1)
        self.img_scale = as_pair(img_scale, "img_scale")
        self.ratio_range = tuple(map(float, ratio_range))
        self.flip_ratio = flip_ratio
        self.pad_val = pad_val
        self.max_iters = max_iters
        self.bbox_clip_border = bbox_clip_border
        self.prob = prob
        self._val = pad_value(pad_val)

    def transform(self, results: dict) -> dict:
        if not self._push(results) or rng().random() > self.prob:
            return results
        other = None
        for _ in range(self.max_iters):
            cand = self._draw()
            if num_gt(cand):
                other = cand
                break
        if other is None:
            return results
        r = rng()
        jit = r.uniform(*self.ratio_range)
        is_flip = r.random() < self.flip_ratio
        w, h = self.img_scale
        oimg = other["img"]
        oh, ow = oimg.shape[:2]
        s = min(h / oh, w / ow) * jit
        nw, nh = max(1, int(ow * s)), max(1, int(oh * s))
        img = cv2.resize(oimg, (nw, nh), interpolation=cv2.INTER_LINEAR)
        if is_flip:
            img = img[:, ::-1]
        th, tw = results["img"].shape[:2]
        ph, pw = max(nh, th), max(nw, tw)
        padded = filled(ph, pw, self._val)
        padded[:nh, :nw] = img
        oy = int(r.integers(0, ph - th + 1))
        ox = int(r.integers(0, pw - tw + 1))
        patch = padded[oy:oy + th, ox:ox + tw]
        mixed = cv2.addWeighted(results["img"], 0.5, np.ascontiguousarray(patch), 0.5, 0.0)

        b, lab, ign = _gt(other)
        sx, sy = nw / ow, nh / oh
        b = b * np.array([sx, sy, sx, sy], np.float32)
        if is_flip:
            b = b[:, [2, 1, 0, 3]] * np.array([-1, 1, -1, 1], np.float32) + np.array([nw, 0, nw, 0], np.float32)
        if self.bbox_clip_border:
            b = clip_xyxy(b, ph, pw)
        b = b - np.array([ox, oy, ox, oy], np.float32)
        if self.bbox_clip_border:
            b = clip_xyxy(b, th, tw)
        vanished = np.zeros(len(b), bool)
        om = None
        if results.get("gt_masks") is not None:
            om = other.get("gt_masks")
            om = om if om is not None else BitmapMasks(np.zeros((len(lab), oh, ow), np.uint8), oh, ow)
            had = om.areas > 0
            om = om.resize(nh, nw)
            if is_flip:
                om = om.flip("horizontal")
            om = om.pad(ph, pw).crop(ox, oy, ox + tw, oy + th)
            b, vanished = _sync(b, om, had)
        keep = valid_boxes(clip_xyxy(b, th, tw)) & ~vanished
        base_b, base_l, base_i = _gt(results)
        out = dict(results)
        out.update(img=mixed, gt_bboxes=np.concatenate([base_b, b[keep]]).astype(np.float32),
                   gt_labels=np.concatenate([base_l, lab[keep]]).astype(np.int64),
                   gt_ignore=np.concatenate([base_i, ign[keep]]).astype(bool), homography_matrix=None)
        if om is not None:
            out["gt_masks"] = BitmapMasks.cat([results["gt_masks"], om[keep]])
        return out


def _sync(boxes: np.ndarray, masks: BitmapMasks, had_mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Boxes of masked instances from their (cut) masks; which masked instances vanished."""
    areas = masks.areas
    use = had_mask & (areas > 0)
    boxes = boxes.copy()
    boxes[use] = masks.get_bboxes()[use]
    return boxes, had_mask & (areas == 0)
