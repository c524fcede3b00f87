"""Parity: `det confusion-matrix` against MMDetection 3.3's tools/analysis_tools/confusion_matrix.py.

Run with the peer environment's python (it has mmdet); det runs as a subprocess from .venv:
    ../peers-env/venv/bin/python benchmarks/parity/confusion_matrix.py [--cases 5]
MMDetection's CocoDataset parses the annotations and its analyze_per_img_dets counts each image;
mmcv's compiled ops are not needed (no --nms-iou-thr here: MMDetection's NMS branch indexes
post-NMS boxes with pre-NMS scores).
"""
from __future__ import annotations

import argparse
import glob
import importlib.util
import json
import subprocess
import sys
import tempfile
import types
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "core" / "analysis"))
from cocofixtures import random_coco  # noqa: E402


def stub_mmcv_ext() -> None:
    """mmcv-lite has no compiled `mmcv._ext`; mmcv.ops only needs its names to exist at import
    (none of its kernels run here)."""
    ext = types.ModuleType("mmcv._ext")

    def missing(name):
        if name.startswith("_"):
            raise AttributeError(name)

        def fail(*_a, **_k):
            raise RuntimeError(f"mmcv._ext.{name} is not compiled in the peer environment")
        return fail

    ext.__getattr__ = missing  # type: ignore[attr-defined]
    sys.modules.setdefault("mmcv._ext", ext)


def load_mmdet_tool():
    stub_mmcv_ext()
    path = glob.glob(str(Path(sys.prefix) / "lib/python3*/site-packages/mmdet/.mim/tools/analysis_tools/confusion_matrix.py"))[0]
    spec = importlib.util.spec_from_file_location("mmdet_confusion_matrix", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def mmdet_matrix(tool, gt_path: Path, dets: list[dict], gt: dict, score_thr: float, iou_thr: float) -> np.ndarray:
    from mmdet.datasets import CocoDataset

    classes = tuple(c["name"] for c in gt["categories"])
    ds = CocoDataset(ann_file=str(gt_path), data_prefix=dict(img=""), test_mode=True, pipeline=[],
                     metainfo=dict(classes=classes))
    cat2label = {c["id"]: i for i, c in enumerate(gt["categories"])}
    cm = np.zeros((len(classes) + 1, len(classes) + 1))
    for idx in range(len(ds)):
        info = ds.get_data_info(idx)
        mine = [d for d in dets if d["image_id"] == info["img_id"]]
        boxes = torch.tensor([[d["bbox"][0], d["bbox"][1], d["bbox"][0] + d["bbox"][2], d["bbox"][1] + d["bbox"][3]]
                              for d in mine], dtype=torch.float32).reshape(-1, 4)
        pred = {"bboxes": boxes, "scores": torch.tensor([d["score"] for d in mine], dtype=torch.float32),
                "labels": torch.tensor([cat2label[d["category_id"]] for d in mine], dtype=torch.long)}
        tool.analyze_per_img_dets(cm, info["instances"], pred, score_thr, iou_thr)
    return cm.astype(np.int64)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cases", type=int, default=5)
    args = parser.parse_args()
    tool = load_mmdet_tool()
    det = str(REPO / ".venv" / "bin" / "det")
    equal = 0
    for seed in range(args.cases):
        gt, dets = random_coco(1000 + seed, n_img=40)
        score_thr, iou_thr = [(0.3, 0.5), (0.0, 0.3), (0.5, 0.75)][seed % 3]
        with tempfile.TemporaryDirectory() as tmp:
            gt_path, res_path = Path(tmp) / "gt.json", Path(tmp) / "res.json"
            gt_path.write_text(json.dumps(gt))
            res_path.write_text(json.dumps(dets))
            ref = mmdet_matrix(tool, gt_path, dets, gt, score_thr, iou_thr)
            r = subprocess.run([det, "confusion-matrix", str(res_path), "--ann", str(gt_path), "--score-thr",
                                str(score_thr), "--tp-iou-thr", str(iou_thr), "--out-dir", tmp, "--json"],
                               capture_output=True, text=True, check=True)
            ours = np.array(json.loads(r.stdout)["matrix"])
        same = np.array_equal(ours, ref)
        equal += same
        print(f"case {seed}: score_thr={score_thr} iou={iou_thr} detections={len(dets)} "
              f"cells={int(ref.sum())} equal={same}")
        if not same:
            print("mmdet:\n", ref, "\ndet:\n", ours)
    print(f"{equal}/{args.cases} cases equal")
    sys.exit(0 if equal == args.cases else 1)


if __name__ == "__main__":
    main()
