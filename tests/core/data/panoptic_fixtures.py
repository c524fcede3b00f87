"""A tiny handmade COCO panoptic dataset written with raw RGB bytes (not det's encoder), so
tests check det's id decoding against the format's rule id = R + 256 G + 256^2 B."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

# categories in file order: a stuff class first, things not sorted by id (labels: cat, dog, grass, sky)
CATEGORIES = [{"id": 10, "name": "sky", "isthing": 0}, {"id": 3, "name": "dog", "isthing": 1},
              {"id": 1, "name": "cat", "isthing": 1}, {"id": 5, "name": "grass", "isthing": 0}]
CAT, DOG, SKY, GRASS = 70000, 300, 5, 7  # segment ids; 70000 = (112, 17, 1), 300 = (44, 1, 0)
CROWD_CAT = 9
RGB = {0: (0, 0, 0), CAT: (112, 17, 1), DOG: (44, 1, 0), SKY: (5, 0, 0), GRASS: (7, 0, 0), CROWD_CAT: (9, 0, 0)}


def ids_image0() -> np.ndarray:
    """6 x 8 map: sky on top rows, grass below, a cat (3x2), a dog (2x2), a crowd of cats, void."""
    ids = np.full((6, 8), SKY, np.int64)
    ids[3:] = GRASS
    ids[1:3, 1:4] = CAT
    ids[3:5, 5:7] = DOG
    ids[5, 0:2] = CROWD_CAT
    ids[0, 7] = 0
    return ids


def write_rgb_png(path: Path, ids: np.ndarray) -> None:
    rgb = np.zeros((*ids.shape, 3), np.uint8)
    for seg_id, colour in RGB.items():
        rgb[ids == seg_id] = colour
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), rgb[..., ::-1].copy())


def segments(ids: np.ndarray) -> list[dict]:
    cats = {CAT: 1, DOG: 3, SKY: 10, GRASS: 5, CROWD_CAT: 1}
    out = []
    for seg_id in sorted(cats):
        mask = ids == seg_id
        if not mask.any():
            continue
        ys, xs = np.nonzero(mask)
        out.append({"id": seg_id, "category_id": cats[seg_id], "iscrowd": int(seg_id == CROWD_CAT),
                    "area": int(mask.sum()), "bbox": [int(xs.min()), int(ys.min()), int(np.ptp(xs) + 1), int(np.ptp(ys) + 1)]})
    return out


def make_dataset(root: Path, maps: list[np.ndarray] | None = None) -> Path:
    """root/panoptic_val.json, root/panoptic_val/*.png and root/val/*.png images."""
    maps = maps if maps is not None else [ids_image0(), np.where(ids_image0() == DOG, GRASS, ids_image0())]
    images, anns = [], []
    for i, ids in enumerate(maps):
        name = f"{i:03d}.png"
        write_rgb_png(root / "panoptic_val" / name, ids)
        img = np.full((*ids.shape, 3), 40 * i + 20, np.uint8)
        (root / "val").mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / "val" / name), img)
        images.append({"id": i + 1, "file_name": name, "width": ids.shape[1], "height": ids.shape[0]})
        anns.append({"image_id": i + 1, "file_name": name, "segments_info": segments(ids)})
    path = root / "panoptic_val.json"
    path.write_text(json.dumps({"images": images, "annotations": anns, "categories": CATEGORIES}))
    return path
