"""Confusion matrix equals a slow, literal implementation of MMDetection's rules."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cocofixtures import random_coco, write  # noqa: E402
from torchvision.ops import nms

from det.core.analysis import confusion as C
from det.core.errors import DetError


def slow_reference(gt: dict, dets: list[dict], score_thr: float, tp_iou_thr: float, nms_iou_thr=None) -> np.ndarray:
    """Loops over images, detected labels, detections and ground truths, one pair at a time."""
    cats = [c["id"] for c in gt["categories"]]
    label = {c: i for i, c in enumerate(cats)}
    n = len(cats)
    cm = np.zeros((n + 1, n + 1), dtype=np.int64)
    sizes = {im["id"]: (im["width"], im["height"]) for im in gt["images"]}
    for img in gt["images"]:
        gts = []
        for a in gt["annotations"]:
            if a["image_id"] != img["id"]:
                continue
            x, y, w, h = a["bbox"]
            iw, ih = sizes[img["id"]]
            if max(0, min(x + w, iw) - max(x, 0)) * max(0, min(y + h, ih) - max(y, 0)) == 0:
                continue
            if a["area"] <= 0 or w < 1 or h < 1:
                continue
            gts.append(([x, y, x + w, y + h], label[a["category_id"]]))
        mine = [d for d in dets if d["image_id"] == img["id"]]
        tp = [0] * len(gts)
        for c in sorted({label[d["category_id"]] for d in mine}):
            cls = [d for d in mine if label[d["category_id"]] == c and d["score"] >= score_thr]
            boxes = [[d["bbox"][0], d["bbox"][1], d["bbox"][0] + d["bbox"][2], d["bbox"][1] + d["bbox"][3]] for d in cls]
            scores = [d["score"] for d in cls]
            if nms_iou_thr and boxes:
                keep = nms(torch.tensor(boxes, dtype=torch.float32), torch.tensor(scores, dtype=torch.float32), nms_iou_thr)
                boxes = [boxes[k] for k in sorted(keep.tolist())]
            for box in boxes:
                hits = 0
                for j, (g, gl) in enumerate(gts):
                    if iou32(box, g) >= tp_iou_thr:
                        hits += 1
                        if gl == c:
                            tp[j] += 1
                        cm[gl, c] += 1
                if hits == 0:
                    cm[n, c] += 1
        for j, (_, gl) in enumerate(gts):
            if tp[j] == 0:
                cm[gl, n] += 1
    return cm


def iou32(a, b) -> np.float32:
    a = np.asarray(a, np.float32)
    b = np.asarray(b, np.float32)
    iw = max(min(a[2], b[2]) - max(a[0], b[0]), np.float32(0))
    ih = max(min(a[3], b[3]) - max(a[1], b[1]), np.float32(0))
    inter = np.float32(iw * ih)
    union = max(np.float32((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter), np.float32(1e-6))
    return inter / union


@pytest.mark.parametrize("seed", range(6))
def test_counts_equal_slow_reference(seed):
    gt, dets = random_coco(seed)
    score_thr, iou_thr = [(0.3, 0.5), (0.0, 0.3), (0.5, 0.7)][seed % 3]
    parsed = C.read_gt(gt)
    got = C.confusion_matrix(parsed, dets, score_thr, iou_thr, progress=False)
    want = slow_reference(gt, dets, score_thr, iou_thr)
    np.testing.assert_array_equal(got, want)
    assert got[:-1, :-1].trace() > 0 and got[-1].sum() > 0 and got[:, -1].sum() > 0  # all kinds of cells occur


@pytest.mark.parametrize("seed", range(2))
def test_counts_with_nms_equal_slow_reference(seed):
    gt, dets = random_coco(100 + seed, dets_per_gt=4)
    got = C.confusion_matrix(C.read_gt(gt), dets, 0.2, 0.5, nms_iou_thr=0.5, progress=False)
    np.testing.assert_array_equal(got, slow_reference(gt, dets, 0.2, 0.5, nms_iou_thr=0.5))


def test_hand_case_and_precision_recall():
    gt = {"images": [{"id": 1, "width": 100, "height": 100}],
          "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}],
          "annotations": [{"image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "area": 100},
                          {"image_id": 1, "category_id": 2, "bbox": [50, 50, 10, 10], "area": 100},
                          {"image_id": 1, "category_id": 2, "bbox": [80, 80, 10, 10], "area": 100}]}
    dets = [{"image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "score": 0.9},    # TP a
            {"image_id": 1, "category_id": 1, "bbox": [50, 50, 10, 10], "score": 0.8},  # b predicted as a
            {"image_id": 1, "category_id": 2, "bbox": [20, 20, 10, 10], "score": 0.7},  # background FP
            {"image_id": 1, "category_id": 2, "bbox": [80, 80, 10, 10], "score": 0.1}]  # below threshold
    cm = C.confusion_matrix(C.read_gt(gt), dets, 0.3, 0.5, progress=False)
    np.testing.assert_array_equal(cm, [[1, 0, 0], [1, 0, 2], [0, 1, 0]])
    pr = C.precision_recall(cm, ["a", "b"])
    assert pr["a"]["precision"] == 0.5 and pr["a"]["recall"] == 1.0 and pr["b"]["recall"] == 0.0
    csv = C.matrix_csv(cm, ["a", "b"]).splitlines()
    assert csv[0] == "gt \\ pred,a,b,background" and csv[3] == "background,0,1,0"


def test_run_and_plot(tmp_path):
    gt, dets = random_coco(7)
    res = C.run_confusion_matrix(write(tmp_path / "r.json", dets), write(tmp_path / "gt.json", gt))
    png = C.plot_matrix(res["matrix"], res["classes"], tmp_path / "cm.png")
    assert png.read_bytes()[:4] == b"\x89PNG" and png.stat().st_size > 10000
    with pytest.raises(DetError, match="r2.json.*image ids not in the annotations"):
        C.run_confusion_matrix(write(tmp_path / "r2.json", [{**dets[0], "image_id": -5}]), tmp_path / "gt.json")
