"""CocoMetric (predictions -> COCO results -> coco_evaluate) gives pycocotools' own numbers on
non-trivial predictions: jittered ground truth, missed objects, false positives, odd category ids."""
from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pytest
import torch
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from det.core.evaluation.evaluator import CocoMetric
from det.core.structures import DetSample, Instances


class FakeDataset:
    classes = ("a", "b", "c")
    cat_ids = [3, 7, 11]  # non-contiguous ids: labels must be mapped

    def __init__(self, seed: int = 0):
        r = np.random.default_rng(seed)
        self.images, self.anns = [], []
        for i in range(12):
            self.images.append({"id": 100 + i, "width": 200, "height": 150, "file_name": f"{i}.png"})
            for _ in range(int(r.integers(1, 6))):
                w, h = float(r.uniform(5, 120)), float(r.uniform(5, 100))
                x, y = float(r.uniform(0, 200 - w)), float(r.uniform(0, 150 - h))
                self.anns.append({"id": len(self.anns) + 1, "image_id": 100 + i, "category_id": int(r.choice(self.cat_ids)),
                                  "bbox": [x, y, w, h], "area": w * h, "iscrowd": 0})

    def coco_gt(self) -> dict:
        return {"images": self.images, "annotations": self.anns,
                "categories": [{"id": c, "name": n} for c, n in zip(self.cat_ids, self.classes)]}


def test_coco_metric_equals_pycocotools():
    ds = FakeDataset()
    r = np.random.default_rng(1)
    metric = CocoMetric(ds, metric="bbox")
    metric.reset()
    for img in ds.images:
        boxes, labels, scores = [], [], []
        for ann in (a for a in ds.anns if a["image_id"] == img["id"]):
            if r.random() < 0.2:
                continue  # missed
            x, y, w, h = ann["bbox"]
            j = r.normal(0, 0.08, 4) * [w, h, w, h]
            boxes.append([x + j[0], y + j[1], x + w + j[2], y + h + j[3]])
            labels.append(ds.cat_ids.index(ann["category_id"]) if r.random() > 0.1 else int(r.integers(0, 3)))
            scores.append(float(r.uniform(0.3, 1.0)))
        for _ in range(int(r.integers(0, 3))):  # false positives
            x, y = r.uniform(0, 150), r.uniform(0, 100)
            boxes.append([x, y, x + r.uniform(5, 50), y + r.uniform(5, 50)])
            labels.append(int(r.integers(0, 3)))
            scores.append(float(r.uniform(0, 0.6)))
        pred = Instances(bboxes=torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4), labels=torch.tensor(labels, dtype=torch.long),
                         scores=torch.tensor(scores, dtype=torch.float32))
        metric.process([DetSample(img_id=img["id"])], [pred])
    ours = metric.evaluate()
    results = metric.results()
    assert {r["category_id"] for r in results} <= set(ds.cat_ids)

    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = json.loads(json.dumps(ds.coco_gt()))
        gt.createIndex()
        ev = COCOeval(gt, gt.loadRes(results), "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    names = ["mAP", "mAP_50", "mAP_75", "mAP_s", "mAP_m", "mAP_l"]
    assert 0.2 < ev.stats[0] < 0.95  # a non-trivial case
    for name, value in zip(names, ev.stats[:6]):
        assert ours[f"coco/bbox_{name}"] == pytest.approx(float(value), abs=1e-9), name
