"""det's LVIS metric vs the `lvis` package (peer) on random federated cases, bbox and segm.

Each case has per-image negative and not-exhaustive class lists, rare/common/frequent classes,
ignore-flagged ground truths, detections of unlisted classes and of all sizes. Prints the largest
absolute difference over AP, AP50, AP75, APs/m/l, APr/c/f and AR@300 per case; exits 1 unless all
are 0.

Usage: .venv/bin/python benchmarks/parity/lvis_metric.py [--cases 10]
"""
from __future__ import annotations

import contextlib
import copy
import io
import logging
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from common import case_count, import_peer  # noqa: E402

from det.core.evaluation.lvis import lvis_evaluate  # noqa: E402

W = H = 64


def _rle(m: np.ndarray) -> dict:
    from pycocotools import mask as mask_utils

    rle = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
    rle["counts"] = rle["counts"].decode()
    return rle


def _mask(box) -> np.ndarray:
    m = np.zeros((H, W), bool)
    x, y, w, h = (int(round(v)) for v in box)
    m[y:y + h, x:x + w] = True
    m[y:y + h // 2, x:x + w // 3] = False
    return m


def make_case(seed: int, masks: bool):
    rng = np.random.default_rng(seed)
    n_cls = int(rng.integers(3, 8))
    cats = [{"id": c + 1, "name": f"c{c + 1}", "frequency": "rcf"[int(rng.integers(0, 3))]} for c in range(n_cls)]
    images, anns, dets = [], [], []
    for i in range(1, int(rng.integers(4, 10)) + 1):
        present = set()
        for _ in range(int(rng.integers(0, 6))):
            w, h = rng.uniform(2, 40, 2)
            box = [float(rng.uniform(0, W - w)), float(rng.uniform(0, H - h)), float(w), float(h)]
            c = int(rng.integers(1, n_cls + 1))
            present.add(c)
            ann = {"id": len(anns) + 1, "image_id": i, "category_id": c, "bbox": box, "area": w * h}
            if rng.random() < 0.1:
                ann["ignore"] = 1
            if masks:
                ann["segmentation"] = _rle(_mask(box))
                ann["area"] = float(_mask(box).sum())
            anns.append(ann)
            for _ in range(int(rng.integers(0, 3))):
                j = rng.normal(0, 2, 4)
                dets.append({"image_id": i, "category_id": c, "bbox": [box[0] + j[0], box[1] + j[1], abs(box[2] + j[2]) + 1,
                                                                        abs(box[3] + j[3]) + 1]})
        others = [c for c in range(1, n_cls + 1) if c not in present]
        rng.shuffle(others)
        neg = others[: len(others) // 2]
        nel = [c for c in range(1, n_cls + 1) if rng.random() < 0.2]
        images.append({"id": i, "width": W, "height": H, "neg_category_ids": neg, "not_exhaustive_category_ids": nel})
        for _ in range(int(rng.integers(0, 12))):
            w, h = rng.uniform(2, 40, 2)
            dets.append({"image_id": i, "category_id": int(rng.integers(1, n_cls + 1)),
                         "bbox": [float(rng.uniform(0, W - w)), float(rng.uniform(0, H - h)), float(w), float(h)]})
    for d in dets:
        d["score"] = float(rng.integers(0, 5)) / 5 if rng.random() < 0.3 else float(rng.random())
        if masks:
            d["segmentation"] = _rle(_mask(d["bbox"]))
            del d["bbox"]
    return {"images": images, "annotations": anns, "categories": cats}, dets


def reference(lvis, gt: dict, dets: list[dict], iou_type: str) -> dict:
    np.float = float  # the lvis package still uses the alias numpy removed
    logging.getLogger("lvis").setLevel(logging.ERROR)
    with contextlib.redirect_stdout(io.StringIO()):
        api = lvis.LVIS.__new__(lvis.LVIS)
        api.logger = logging.getLogger("lvis")
        api.dataset = copy.deepcopy(gt)
        api._create_index()
        ev = lvis.LVISEval(api, lvis.LVISResults(api, copy.deepcopy(dets)), iou_type)
        ev.run()
    return dict(ev.results)


def main() -> None:
    cases = case_count(__doc__, 10)
    lvis = import_peer("lvis")
    if lvis is None:
        sys.exit("lvis (peer) not available: nothing to compare")
    worst = 0.0
    for seed in range(cases):
        for iou_type in ("bbox", "segm"):
            gt, dets = make_case(seed, iou_type == "segm")
            ref = reference(lvis, gt, dets, iou_type)
            ours = lvis_evaluate(copy.deepcopy(gt), dets, iou_type)
            diff = max(abs(float(ref[k]) - ours[f"lvis/{iou_type}_{k}"]) for k in ref)
            worst = max(worst, diff)
            print(f"case {seed} {iou_type}: AP {ours[f'lvis/{iou_type}_AP']:.6f} (lvis {float(ref['AP']):.6f}), "
                  f"APr/c/f {ours[f'lvis/{iou_type}_APr']:.4f}/{ours[f'lvis/{iou_type}_APc']:.4f}/"
                  f"{ours[f'lvis/{iou_type}_APf']:.4f}, max |diff| {diff:.3g}")
    print(f"largest difference over {cases} cases x 2 types: {worst:.3g}")
    sys.exit(0 if worst == 0 else 1)


if __name__ == "__main__":
    main()
