"""Random COCO ground truth and results with near-misses, class swaps and false positives."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def random_coco(seed: int, n_img: int = 20, n_cls: int = 4, max_gt: int = 6, max_fp: int = 8,
                w: int = 200, h: int = 160, dets_per_gt: int = 2):
    rng = np.random.default_rng(seed)
    images, anns, dets = [], [], []
    for img_id in range(1, n_img + 1):
        images.append({"id": img_id, "width": w, "height": h, "file_name": f"img_{img_id}.png"})
        for _ in range(rng.integers(0, max_gt + 1)):
            bw, bh = rng.uniform(0.5, 70), rng.uniform(0.5, 60)  # some too small (dropped like CocoDataset)
            x, y = rng.uniform(-10, w - 5), rng.uniform(-10, h - 5)
            cat = int(rng.integers(1, n_cls + 1))
            anns.append({"id": len(anns) + 1, "image_id": img_id, "category_id": cat, "bbox": [x, y, bw, bh],
                         "area": bw * bh, "iscrowd": int(rng.random() < 0.05)})
            for _ in range(rng.integers(0, dets_per_gt + 1)):
                jitter = rng.normal(0, 0.15 * max(bw, bh), 4)
                dcat = cat if rng.random() < 0.7 else int(rng.integers(1, n_cls + 1))
                dets.append({"image_id": img_id, "category_id": dcat,
                             "bbox": [x + jitter[0], y + jitter[1], max(bw + jitter[2], 1.0), max(bh + jitter[3], 1.0)],
                             "score": float(rng.random())})
        for _ in range(rng.integers(0, max_fp + 1)):
            bw, bh = rng.uniform(2, 70), rng.uniform(2, 60)
            dets.append({"image_id": img_id, "category_id": int(rng.integers(1, n_cls + 1)),
                         "bbox": [rng.uniform(0, w - bw), rng.uniform(0, h - bh), bw, bh], "score": float(rng.random())})
    cats = [{"id": 10 + i, "name": f"c{i}"} for i in range(n_cls)]  # non-contiguous ids
    for a in anns:
        a["category_id"] += 9
    for d in dets:
        d["category_id"] += 9
    return {"images": images, "annotations": anns, "categories": cats}, dets


def write(path: Path, obj) -> Path:
    path.write_text(json.dumps(obj))
    return path
