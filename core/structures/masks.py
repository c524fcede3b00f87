"""Instance masks: polygons (COCO lists of flat [x0, y0, x1, y1, ...]) and bitmaps, to and
from COCO RLE through pycocotools."""
from __future__ import annotations

import numpy as np
from pycocotools import mask as mask_utils


def polygons_to_rle(polygons: list[list[float]], height: int, width: int) -> dict:
    """One instance's polygons -> a merged COCO RLE (counts as str, JSON-ready)."""
    polys = [list(map(float, p)) for p in polygons if len(p) >= 6]
    if not polys:
        return bitmap_to_rle(np.zeros((height, width), dtype=np.uint8))
    rles = mask_utils.frPyObjects(polys, height, width)
    rle = mask_utils.merge(rles)
    return _jsonable(rle)


def polygons_to_bitmap(polygons: list[list[float]], height: int, width: int) -> np.ndarray:
    """One instance's polygons -> (H, W) uint8 bitmap."""
    return rle_to_bitmap(polygons_to_rle(polygons, height, width))


def bitmap_to_rle(bitmap: np.ndarray) -> dict:
    """(H, W) bool/uint8 bitmap -> COCO RLE with str counts."""
    rle = mask_utils.encode(np.asfortranarray(bitmap.astype(np.uint8)))
    return _jsonable(rle)


def rle_to_bitmap(rle: dict) -> np.ndarray:
    """COCO RLE (compressed str/bytes counts or uncompressed list counts) -> (H, W) uint8."""
    if isinstance(rle.get("counts"), list):
        h, w = rle["size"]
        rle = mask_utils.frPyObjects(rle, h, w)
    elif isinstance(rle.get("counts"), str):
        rle = {"size": rle["size"], "counts": rle["counts"].encode("ascii")}
    return mask_utils.decode(rle)


def _jsonable(rle: dict) -> dict:
    counts = rle["counts"]
    return {"size": [int(s) for s in rle["size"]], "counts": counts.decode("ascii") if isinstance(counts, bytes) else counts}
