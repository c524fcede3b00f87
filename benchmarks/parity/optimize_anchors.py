"""Parity: `det optimize-anchors --algorithm kmeans` mean IoU against MMDetection 3.3's
YOLOKMeansAnchorOptimizer (tools/analysis_tools/optimize_anchors.py) on the same boxes and seed.

Run with the peer environment's python (it has mmdet); det runs as a subprocess from .venv:
    ../peers-env/venv/bin/python benchmarks/parity/optimize_anchors.py [--seeds 3]
The boxes: a COCO-like annotation file (log-normal box sizes, mixed aspect ratios, images of
several sizes), written once; both tools rescale them to a 640 x 640 input.
"""
from __future__ import annotations

import argparse
import glob
import importlib.util
import json
import logging
import subprocess
import sys
import tempfile
import types
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[2]


def make_gt(seed: int, n_img: int = 400) -> dict:
    rng = np.random.default_rng(seed)
    images, anns = [], []
    for i in range(1, n_img + 1):
        w, h = [(640, 480), (480, 640), (1333, 800), (500, 375)][i % 4]
        images.append({"id": i, "width": w, "height": h, "file_name": f"{i}.jpg"})
        for _ in range(rng.integers(1, 15)):
            size = np.exp(rng.normal(3.6, 1.0))
            ratio = np.exp(rng.normal(0, 0.6))
            bw, bh = min(size * ratio ** 0.5, w - 1), min(size / ratio ** 0.5, h - 1)
            if bw < 1 or bh < 1:
                continue
            anns.append({"id": len(anns) + 1, "image_id": i, "category_id": 1,
                         "bbox": [rng.uniform(0, w - bw), rng.uniform(0, h - bh), bw, bh], "area": bw * bh, "iscrowd": 0})
    return {"images": images, "annotations": anns, "categories": [{"id": 1, "name": "object"}]}


def load_mmdet_tool():
    ext = types.ModuleType("mmcv._ext")

    def missing(name):
        if name.startswith("_"):
            raise AttributeError(name)
        return lambda *a, **k: None

    ext.__getattr__ = missing  # type: ignore[attr-defined]
    sys.modules.setdefault("mmcv._ext", ext)
    path = glob.glob(str(Path(sys.prefix) / "lib/python3*/site-packages/mmdet/.mim/tools/analysis_tools/optimize_anchors.py"))[0]
    spec = importlib.util.spec_from_file_location("mmdet_optimize_anchors", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


class Records:
    """The two methods MMDetection's optimizer calls on a dataset."""

    def __init__(self, gt: dict):
        per = {img["id"]: {"width": img["width"], "height": img["height"], "instances": []} for img in gt["images"]}
        for a in gt["annotations"]:
            x, y, w, h = a["bbox"]
            per[a["image_id"]]["instances"].append({"bbox": [x, y, x + w, y + h]})
        self.records = list(per.values())

    def __len__(self):
        return len(self.records)

    def get_data_info(self, i):
        return self.records[i]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--num-anchors", type=int, default=9)
    args = parser.parse_args()
    tool = load_mmdet_tool()
    gt = make_gt(0)
    det = str(REPO / ".venv" / "bin" / "det")
    ok = 0
    with tempfile.TemporaryDirectory() as tmp:
        gt_path = Path(tmp) / "gt.json"
        gt_path.write_text(json.dumps(gt))
        for seed in range(args.seeds):
            torch.manual_seed(seed)
            opt = tool.YOLOKMeansAnchorOptimizer(num_anchors=args.num_anchors, iters=1000, dataset=Records(gt),
                                                 input_shape=[640, 640], logger=logging.getLogger("mmdet"), device="cpu")
            anchors = np.array(opt.kmeans_anchors(), dtype=np.float64)
            boxes = torch.from_numpy(opt.bbox_whs).double()
            inter = torch.minimum(boxes[:, None, 0], torch.from_numpy(anchors)[None, :, 0]) * \
                torch.minimum(boxes[:, None, 1], torch.from_numpy(anchors)[None, :, 1])
            union = (boxes[:, 0] * boxes[:, 1])[:, None] + torch.from_numpy(anchors[:, 0] * anchors[:, 1])[None] - inter
            mm_iou = float((inter / union).max(1).values.mean())
            out = Path(tmp) / f"s{seed}"
            r = subprocess.run([det, "optimize-anchors", "--ann", str(gt_path), "--algorithm", "kmeans", "--input-shape",
                                "640", "640", "--num-anchors", str(args.num_anchors), "--seed", str(seed), "--out-dir",
                                str(out), "--json"], capture_output=True, text=True)
            if r.returncode:
                sys.exit(r.stderr)
            res = json.loads(r.stdout)
            good = res["mean_iou_float"] >= mm_iou - 1e-9
            ok += good
            print(f"seed {seed}: boxes={len(opt.bbox_whs)} mmdet k-means mean IoU={mm_iou:.4f}  "
                  f"det k-means={res['mean_iou_float']:.4f} (rounded anchors {res['mean_iou']:.4f})  det>=mmdet: {good}")
    print(f"{ok}/{args.seeds} seeds with det >= MMDetection")


if __name__ == "__main__":
    main()
