"""Panoptic segmentation records: the COCO panoptic PNG id encoding and `PanopticPrediction`,
the result a panoptic model returns per image.

COCO panoptic PNGs store a segment id per pixel as RGB: id = R + 256 * G + 256^2 * B; id 0 is
VOID (unlabeled). A segment's class comes from the JSON's `segments_info`, never from the id.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

VOID = 0
IGNORE_LABEL = 255  # semantic-map value of unlabeled pixels (MMDetection's seg ignore label)


def rgb2id(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> (H, W) int64 segment ids."""
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] < 3:
        raise ValueError(f"expected an (H, W, 3) RGB array, got shape {rgb.shape}")
    c = rgb[..., :3].astype(np.int64)
    return c[..., 0] + 256 * c[..., 1] + 256 * 256 * c[..., 2]


def id2rgb(ids: np.ndarray) -> np.ndarray:
    """(H, W) segment ids (< 256^3) -> (H, W, 3) uint8 RGB."""
    ids = np.asarray(ids, np.int64)
    if ids.size and (ids.min() < 0 or ids.max() >= 256**3):
        raise ValueError("segment ids must lie in [0, 256^3)")
    return np.stack([ids % 256, ids // 256 % 256, ids // 65536], -1).astype(np.uint8)


def segment_bbox(mask: np.ndarray) -> list[float]:
    """COCO [x, y, w, h] of a boolean mask (pixel extents, as panopticapi writes them)."""
    ys, xs = np.nonzero(mask)
    if not len(xs):
        return [0.0, 0.0, 0.0, 0.0]
    x0, y0 = int(xs.min()), int(ys.min())
    return [float(x0), float(y0), float(xs.max() - x0 + 1), float(ys.max() - y0 + 1)]


@dataclass
class PanopticPrediction:
    """One image's panoptic result in original-image pixels.

    `seg_map` (H, W) int64: segment id per pixel, 0 = VOID (no prediction). `segments`: one
    dict per segment id: `{id, label, isthing, score}` with `label` a dataset label index (things
    first, then stuff, as CocoPanopticDataset orders them); `score` is optional (stuff: 1.0).
    """

    seg_map: np.ndarray
    segments: list[dict] = field(default_factory=list)
    instances: Any = None  # optional `Instances` a model fused the thing segments from

    def to(self, device: Any) -> "PanopticPrediction":
        """Moves the attached instances (the map is a numpy array already)."""
        if self.instances is not None:
            self.instances = self.instances.to(device)
        return self

    def __post_init__(self) -> None:
        self.seg_map = np.asarray(self.seg_map, np.int64)
        if self.seg_map.ndim != 2:
            raise ValueError(f"seg_map must be (H, W), got shape {self.seg_map.shape}")

    @classmethod
    def from_semantic(cls, sem: np.ndarray, num_things: int, ignore: int = IGNORE_LABEL) -> "PanopticPrediction":
        """A prediction from a semantic label map: one segment per class present (things
        included as one segment each; models with instances build segments themselves)."""
        sem = np.asarray(sem)
        seg_map = np.zeros(sem.shape, np.int64)
        segments = []
        for label in np.unique(sem):
            if int(label) == ignore:
                continue
            seg_id = len(segments) + 1
            seg_map[sem == label] = seg_id
            segments.append({"id": seg_id, "label": int(label), "isthing": int(label) < num_things, "score": 1.0})
        return cls(seg_map, segments)

    def semantic(self, ignore: int = IGNORE_LABEL) -> np.ndarray:
        """(H, W) int64 label per pixel; VOID and ids without a segment -> `ignore`."""
        out = np.full(self.seg_map.shape, ignore, np.int64)
        for seg in self.segments:
            out[self.seg_map == int(seg["id"])] = int(seg["label"])
        return out

    def to_coco(self, cat_ids: list[int]) -> tuple[np.ndarray, list[dict]]:
        """(RGB PNG array, `segments_info`) in COCO panoptic format: `category_id` from the
        label through `cat_ids`, `area` and `bbox` measured on the map, `iscrowd` 0; segments
        without pixels are left out, pixels of ids without a segment become VOID."""
        seg_map = self.seg_map.copy()
        known = {int(s["id"]) for s in self.segments}
        present = set(np.unique(seg_map).tolist()) - {VOID}
        for stray in present - known:
            seg_map[seg_map == stray] = VOID
        info = []
        for seg in self.segments:
            mask = seg_map == int(seg["id"])
            area = int(mask.sum())
            if area == 0:
                continue
            label = int(seg["label"])
            if not 0 <= label < len(cat_ids):
                raise ValueError(f"segment {seg['id']}: label {label} outside the {len(cat_ids)} classes")
            rec = {"id": int(seg["id"]), "category_id": int(cat_ids[label]), "area": area,
                   "bbox": segment_bbox(mask), "iscrowd": 0}
            if seg.get("score") is not None:
                rec["score"] = float(seg["score"])
            info.append(rec)
        return id2rgb(seg_map), info
