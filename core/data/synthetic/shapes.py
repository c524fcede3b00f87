"""Synthetic "shapes" dataset: coloured geometric shapes on textured, noisy backgrounds, with
COCO boxes and polygon masks.

Six well separated classes, 1-8 objects per image, sizes (bounding-circle diameter) log-uniform
between `min_object_size` (default 8 px) and `max_object_size` (default half the image), random rotation and colour, occlusion (later shapes cover earlier ones; an
occluded shape keeps at least 40% of its area and never gets a hole, so its visible part is a
set of simple polygons). Each image is drawn from its own random stream (seed, split, index),
PNGs are written with fixed parameters and JSON with sorted keys: the same seed gives
byte-identical files.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
from pycocotools import mask as mask_utils

SHAPE_CLASSES = ("circle", "square", "triangle", "star", "hexagon", "cross")
GENERATOR_VERSION = 1
_SPLIT_CODE = {"train": 1, "val": 2}
_SHIFT = 4  # fixed-point bits for cv2.fillPoly (sub-pixel vertices)
_MIN_VISIBLE = 0.4


def _unit_shape(name: str) -> np.ndarray:
    """Vertices (K, 2) of a shape with circumradius 1 around the origin."""
    if name == "circle":
        t = np.linspace(0, 2 * np.pi, 40, endpoint=False)
        return np.stack([np.cos(t), np.sin(t)], 1)
    if name == "square":
        t = np.pi / 4 + np.arange(4) * np.pi / 2
        return np.stack([np.cos(t), np.sin(t)], 1)
    if name == "triangle":
        t = -np.pi / 2 + np.arange(3) * 2 * np.pi / 3
        return np.stack([np.cos(t), np.sin(t)], 1)
    if name == "hexagon":
        t = np.arange(6) * np.pi / 3
        return np.stack([np.cos(t), np.sin(t)], 1)
    if name == "star":
        t = -np.pi / 2 + np.arange(10) * np.pi / 5
        r = np.where(np.arange(10) % 2 == 0, 1.0, 0.42)
        return np.stack([r * np.cos(t), r * np.sin(t)], 1)
    if name == "cross":
        a, b = 1 / math.sqrt(1 + 0.34**2), 0.34 / math.sqrt(1 + 0.34**2)  # arm half-width b, length a
        return np.array([[-b, -a], [b, -a], [b, -b], [a, -b], [a, b], [b, b], [b, a], [-b, a], [-b, b], [-a, b],
                         [-a, -b], [-b, -b]])
    raise ValueError(name)


_UNIT = {name: _unit_shape(name) for name in SHAPE_CLASSES}


def _background(r: np.random.Generator, size: int) -> np.ndarray:
    """A textured, noisy background (H, W, 3) float32 in 0..255."""
    base = r.uniform(40, 215, 3)
    low = cv2.resize(r.normal(0, 1, (6, 6, 3)).astype(np.float32), (size, size), interpolation=cv2.INTER_CUBIC)
    img = base + low * r.uniform(10, 35)
    kind = int(r.integers(4))
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    if kind == 0:  # stripes
        ang, period = r.uniform(0, np.pi), r.uniform(6, 30)
        wave = np.sin((xx * np.cos(ang) + yy * np.sin(ang)) * 2 * np.pi / period)
        img += (wave * r.uniform(6, 20))[..., None]
    elif kind == 1:  # checker
        cell = int(r.integers(8, 40))
        chk = (((xx // cell) + (yy // cell)) % 2) * 2 - 1
        img += (chk * r.uniform(5, 15))[..., None]
    elif kind == 2:  # thin random lines
        layer = np.zeros((size, size, 3), np.float32)
        for _ in range(int(r.integers(3, 12))):
            p1, p2 = r.integers(0, size, 2), r.integers(0, size, 2)
            cv2.line(layer, (int(p1[0]), int(p1[1])), (int(p2[0]), int(p2[1])), tuple(float(v) for v in r.uniform(-40, 40, 3)), 1)
        img += layer
    img += r.normal(0, r.uniform(2, 8), (size, size, 3)).astype(np.float32)
    return img.astype(np.float32)


DEFAULT_MIN_OBJECT_SIZE = 8


def object_size_range(size: int, min_object_size: float | None = None,
                      max_object_size: float | None = None) -> tuple[float, float]:
    """The (min, max) bounding-circle diameter in pixels, checked against the image size."""
    low = float(DEFAULT_MIN_OBJECT_SIZE if min_object_size is None else min_object_size)
    high = float(size / 2 if max_object_size is None else max_object_size)
    if not 4 <= low <= high <= size:
        raise ValueError(f"object sizes must satisfy 4 <= min_object_size <= max_object_size <= size ({size}), "
                         f"got {low:g} and {high:g}")
    return low, high


def _polygon(r: np.random.Generator, name: str, size: int, extent_range: tuple[float, float]) -> np.ndarray:
    """A randomly sized, rotated and placed polygon (K, 2) inside the image."""
    extent = math.exp(r.uniform(math.log(extent_range[0]), math.log(extent_range[1])))  # bounding-circle diameter
    radius = extent / 2
    ang = r.uniform(0, 2 * np.pi)
    rot = np.array([[math.cos(ang), -math.sin(ang)], [math.sin(ang), math.cos(ang)]])
    cx, cy = r.uniform(radius, size - radius, 2)
    return _UNIT[name] @ rot.T * radius + np.array([cx, cy])


def _rasterize(poly: np.ndarray, size: int) -> np.ndarray:
    m = np.zeros((size, size), np.uint8)
    cv2.fillPoly(m, [np.round(poly * (1 << _SHIFT)).astype(np.int32)], 1, lineType=cv2.LINE_8, shift=_SHIFT)
    return m


def _has_hole(mask: np.ndarray) -> bool:
    _, hierarchy = cv2.findContours(mask, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    return hierarchy is not None and bool((hierarchy[0][:, 3] >= 0).any())


def render_image(seed: int, split: str, index: int, size: int, min_object_size: float | None = None,
                 max_object_size: float | None = None, background=None) -> tuple[np.ndarray, list[dict]]:
    """One image (H, W, 3 uint8 BGR) and its objects [{label, visible mask (H, W) uint8}].
    `background(r, size)` replaces the default textured background (the panoptic generator
    draws stuff regions with it)."""
    extent_range = object_size_range(size, min_object_size, max_object_size)
    r = np.random.default_rng([int(seed), _SPLIT_CODE[split], int(index)])
    img = (background or _background)(r, size)
    objects: list[dict] = []
    for _ in range(int(r.integers(1, 9))):
        for _try in range(20):
            label = int(r.integers(len(SHAPE_CLASSES)))
            poly = _polygon(r, SHAPE_CLASSES[label], size, extent_range)
            full = _rasterize(poly, size)
            if full.sum() < 16:
                continue
            ok = True
            for o in objects:
                vis = o["mask"] & (1 - full)
                if vis.sum() < _MIN_VISIBLE * o["area"] or (vis.sum() < o["mask"].sum() and _has_hole(vis)):
                    ok = False
                    break
            if not ok:
                continue
            # a colour that stands out from the background under the shape
            under = img[full.astype(bool)].mean(0)
            colour = under
            for _c in range(10):
                hsv = np.array([[[r.uniform(0, 180), r.uniform(120, 255), r.uniform(90, 255)]]], np.float32)
                colour = cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2BGR)[0, 0].astype(np.float32)
                if np.linalg.norm(colour - under) > 90:
                    break
            for o in objects:
                o["mask"] = o["mask"] & (1 - full)
            shade = 1 + r.uniform(-0.15, 0.15) * (np.linspace(-1, 1, size, dtype=np.float32)[None, :, None])
            layer = np.zeros((size, size), np.uint8)
            cv2.fillPoly(layer, [np.round(poly * (1 << _SHIFT)).astype(np.int32)], 255, lineType=cv2.LINE_AA, shift=_SHIFT)
            # blend only inside the anti-aliased shape's bounding box (alpha is 0 elsewhere)
            x, y, w, h = cv2.boundingRect(layer)
            alpha = (layer[y:y + h, x:x + w].astype(np.float32) / 255.0)[..., None]
            img[y:y + h, x:x + w] = img[y:y + h, x:x + w] * (1 - alpha) + (colour * shade[:, x:x + w]) * alpha
            objects.append({"label": label, "mask": full, "area": float(full.sum())})
            break
    img += r.normal(0, 3, img.shape).astype(np.float32)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8), objects


def _annotation(obj: dict) -> dict | None:
    """COCO fields of one object from its visible mask: polygons (outer contours, pixel
    corners), and box and area of the polygons as pycocotools rasterizes them."""
    mask = obj["mask"]
    h, w = mask.shape
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    polys = []
    for c in contours:
        if len(c) < 3:
            continue
        pts = c.reshape(-1, 2).astype(np.float64) + 0.5  # pixel centres in continuous coordinates
        polys.append([round(float(v), 2) for v in pts.reshape(-1)])
    if not polys:
        return None
    rle = mask_utils.merge(mask_utils.frPyObjects(polys, h, w))
    area = float(mask_utils.area(rle))
    if area < 4:
        return None
    x, y, bw, bh = (float(v) for v in mask_utils.toBbox(rle))
    return {"segmentation": polys, "area": area, "bbox": [x, y, bw, bh]}


def generate_shapes(out_dir: str | Path, num_train: int = 600, num_val: int = 100, size: int = 256, seed: int = 0,
                    progress: bool = True, min_object_size: float | None = None,
                    max_object_size: float | None = None) -> dict[str, Path]:
    """Write OUT/{train,val}/NNNNNN.png and OUT/instances_{train,val}.json (COCO format with
    polygon masks). Returns the annotation paths by split. Object sizes default to 8 px up to
    half the image."""
    from det.core.log import track

    if size < 32:
        raise ValueError(f"size must be >= 32, got {size}")
    low, high = object_size_range(size, min_object_size, max_object_size)
    out = Path(out_dir)
    paths = {}
    categories = [{"id": i + 1, "name": n, "supercategory": "shape"} for i, n in enumerate(SHAPE_CLASSES)]
    for split, count in (("train", num_train), ("val", num_val)):
        (out / split).mkdir(parents=True, exist_ok=True)
        images, annotations = [], []
        items = range(int(count))
        if progress:
            items = track(items, f"shapes {split}")
        for i in items:
            img, objects = render_image(seed, split, i, size, low, high)
            name = f"{split}/{i:06d}.png"
            if not cv2.imwrite(str(out / name), img, [cv2.IMWRITE_PNG_COMPRESSION, 3]):
                raise OSError(f"{out / name}: cannot write image")
            images.append({"id": i + 1, "file_name": name, "width": size, "height": size})
            for obj in objects:
                ann = _annotation(obj)
                if ann is None:
                    continue
                ann.update(id=len(annotations) + 1, image_id=i + 1, category_id=obj["label"] + 1, iscrowd=0)
                annotations.append(ann)
        info = {"description": "det synthetic shapes", "generator_version": GENERATOR_VERSION, "seed": int(seed),
                "size": int(size), "split": split, "min_object_size": low, "max_object_size": high}
        doc = {"info": info, "images": images, "annotations": annotations, "categories": categories}
        path = out / f"instances_{split}.json"
        path.write_text(json.dumps(doc, sort_keys=True, separators=(",", ":")) + "\n")
        paths[split] = path
    return paths
