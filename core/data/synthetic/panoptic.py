"""Synthetic panoptic shapes: the shapes generator's objects (things) on stuff regions ('sky',
'ground', 'wall') laid out as bands or halves, each stuff class with its own texture (smooth
gradient, speckled noise, bricks). Boundaries between stuff regions are sometimes a 2-px VOID
line; things whose visible part is under 4 px are VOID too. Written in the COCO panoptic format
(images, `panoptic_{split}.json`, `panoptic_{split}/` segment PNGs); the same seed gives
byte-identical files.
"""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from det.core.data.synthetic.shapes import SHAPE_CLASSES, object_size_range, render_image
from det.core.structures.panoptic import VOID, id2rgb, segment_bbox

STUFF_CLASSES = ("sky", "ground", "wall")
PANOPTIC_GENERATOR_VERSION = 1
_LAYOUTS = (("sky", "ground"), ("wall", "ground"), ("sky", "wall", "ground"), ("wall", "sky"))
_MIN_THING_AREA = 4


def panoptic_categories() -> list[dict]:
    """Things 1..6 (the shapes), then stuff 7..9."""
    things = [{"id": i + 1, "name": n, "supercategory": "shape", "isthing": 1} for i, n in enumerate(SHAPE_CLASSES)]
    stuff = [{"id": len(SHAPE_CLASSES) + i + 1, "name": n, "supercategory": "stuff", "isthing": 0}
             for i, n in enumerate(STUFF_CLASSES)]
    return things + stuff


def _texture(r: np.random.Generator, name: str, size: int) -> np.ndarray:
    """A full-image (H, W, 3) float32 texture characteristic of one stuff class."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    if name == "sky":  # smooth vertical gradient, blue-ish
        top, bottom = r.uniform([150, 60, 20], [255, 160, 90]), r.uniform([200, 150, 110], [255, 230, 200])
        t = (yy / max(size - 1, 1))[..., None]
        return (top * (1 - t) + bottom * t).astype(np.float32) + r.normal(0, 1.5, (size, size, 3)).astype(np.float32)
    if name == "ground":  # speckled earth/grass
        base = r.uniform([20, 60, 40], [90, 160, 140])
        low = cv2.resize(r.normal(0, 1, (8, 8, 3)).astype(np.float32), (size, size), interpolation=cv2.INTER_CUBIC)
        return (base + low * 12 + r.normal(0, 18, (size, size, 3))).astype(np.float32)
    base = r.uniform([90, 90, 110], [170, 170, 200])  # wall: bricks with mortar lines
    bh = int(r.integers(8, 16))
    bw = 2 * bh
    row = (yy // bh).astype(np.int64)
    shift = (row % 2) * (bw // 2)
    mortar = ((yy % bh) < 2) | (((xx + shift) % bw) < 2)
    img = np.broadcast_to(base, (size, size, 3)).astype(np.float32) + r.normal(0, 4, (size, size, 3)).astype(np.float32)
    img[mortar] = base * 0.45
    return img


def _boundaries(r: np.random.Generator, count: int, size: int) -> list[np.ndarray]:
    """`count - 1` wavy boundary curves (one coordinate per column/row), in order."""
    cuts = np.sort(r.uniform(0.25, 0.75, count - 1)) if count > 2 else np.array([r.uniform(0.3, 0.7)])
    if count > 2:
        cuts = np.array([r.uniform(0.2, 0.42), r.uniform(0.58, 0.8)])
    t = np.arange(size, dtype=np.float32)
    curves = []
    for c in cuts:
        amp, period, phase = r.uniform(0, size * 0.06), r.uniform(size * 0.4, size * 1.5), r.uniform(0, 2 * np.pi)
        curves.append(c * size + amp * np.sin(2 * np.pi * t / period + phase))
    return curves


def stuff_layout(r: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
    """(image float32 (H, W, 3), stuff map (H, W) int64: index into STUFF_CLASSES, -1 = VOID)."""
    layout = _LAYOUTS[int(r.integers(len(_LAYOUTS)))]
    vertical = layout == ("wall", "sky")  # halves side by side; the others are horizontal bands
    curves = _boundaries(r, len(layout), size)
    yy, xx = np.mgrid[0:size, 0:size]
    along, across = (xx, yy) if vertical else (yy, xx)
    region = np.zeros((size, size), np.int64)
    for curve in curves:
        region += (along >= curve[across]).astype(np.int64)
    stuff = np.array([STUFF_CLASSES.index(n) for n in layout])[region]
    img = np.zeros((size, size, 3), np.float32)
    for k, name in enumerate(layout):
        tex = _texture(r, name, size)
        img[region == k] = tex[region == k]
    if r.random() < 0.5:  # a VOID line along each boundary
        for curve in curves:
            stuff[np.abs(along - curve[across]) < 1.0] = -1
    return img, stuff


def render_panoptic(seed: int, split: str, index: int, size: int, min_object_size: float | None = None,
                    max_object_size: float | None = None) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    """(image BGR uint8, segment ids (H, W) int64, segments [{id, category_id, area, bbox, iscrowd}])."""
    drawn: dict = {}

    def background(r: np.random.Generator, s: int) -> np.ndarray:
        img, drawn["stuff"] = stuff_layout(r, s)
        return img

    img, objects = render_image(seed, split, index, size, min_object_size, max_object_size, background=background)
    stuff = drawn["stuff"]
    ids = np.full((size, size), VOID, np.int64)
    covered = np.zeros((size, size), bool)
    things = []
    for k, obj in enumerate(objects):
        covered |= obj["mask"].astype(bool)  # occluded parts were removed from earlier masks already
        things.append((obj["label"] + 1, k, obj["mask"].astype(bool)))
    for k, name in enumerate(STUFF_CLASSES):
        ids[(stuff == k) & ~covered] = (len(SHAPE_CLASSES) + k + 1) * 1000 + 1
    for cat, k, mask in things:
        ids[mask] = VOID if mask.sum() < _MIN_THING_AREA else cat * 1000 + k + 1
    return img, ids, _segments(ids)


def _segments(ids: np.ndarray) -> list[dict]:
    segs = []
    for seg_id in np.unique(ids):
        if seg_id == VOID:
            continue
        mask = ids == seg_id
        segs.append({"id": int(seg_id), "category_id": int(seg_id) // 1000, "area": int(mask.sum()),
                     "bbox": segment_bbox(mask), "iscrowd": 0})
    return segs


def generate_panoptic_shapes(out_dir: str | Path, num_train: int = 200, num_val: int = 50, size: int = 128,
                             seed: int = 0, progress: bool = True, min_object_size: float | None = None,
                             max_object_size: float | None = None) -> dict[str, Path]:
    """Write OUT/{train,val}/NNNNNN.png, OUT/panoptic_{train,val}/NNNNNN.png and
    OUT/panoptic_{train,val}.json. Returns the JSON paths by split."""
    from det.core.log import track

    if size < 32:
        raise ValueError(f"size must be >= 32, got {size}")
    low, high = object_size_range(size, min_object_size, max_object_size)
    out = Path(out_dir)
    paths = {}
    for split, count in (("train", num_train), ("val", num_val)):
        (out / split).mkdir(parents=True, exist_ok=True)
        (out / f"panoptic_{split}").mkdir(parents=True, exist_ok=True)
        images, annotations = [], []
        items = track(range(int(count)), f"panoptic shapes {split}") if progress else range(int(count))
        for i in items:
            img, ids, segs = render_panoptic(seed, split, i, size, low, high)
            name = f"{i:06d}.png"
            _write(out / split / name, img)
            _write(out / f"panoptic_{split}" / name, cv2.cvtColor(id2rgb(ids), cv2.COLOR_RGB2BGR))
            images.append({"id": i + 1, "file_name": name, "width": size, "height": size})
            annotations.append({"image_id": i + 1, "file_name": name, "segments_info": segs})
        info = {"description": "det synthetic panoptic shapes", "generator_version": PANOPTIC_GENERATOR_VERSION,
                "seed": int(seed), "size": int(size), "split": split, "min_object_size": low, "max_object_size": high}
        doc = {"info": info, "images": images, "annotations": annotations, "categories": panoptic_categories()}
        paths[split] = out / f"panoptic_{split}.json"
        paths[split].write_text(json.dumps(doc, sort_keys=True, separators=(",", ":")) + "\n")
    return paths


def _write(path: Path, img: np.ndarray) -> None:
    if not cv2.imwrite(str(path), img, [cv2.IMWRITE_PNG_COMPRESSION, 3]):
        raise OSError(f"{path}: cannot write image")
