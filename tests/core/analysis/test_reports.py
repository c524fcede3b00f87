"""Reports drawn for the user: per-class AP rows equal pycocotools' (through coco_evaluate's
classwise detail), PR curves equal the accumulated precision, strict CSV/JSON."""
from __future__ import annotations

import math

import cv2
import numpy as np

from det.core.analysis.reports import ap_csv, coco_precision, detection_reports, per_class_ap
from det.core.evaluation.coco import coco_evaluate


def _case(seed: int = 0):
    rng = np.random.default_rng(seed)
    cats = [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}, {"id": 3, "name": "empty"}]
    images, anns, results = [], [], []
    for i in range(1, 9):
        images.append({"id": i, "file_name": f"{i}.png", "width": 200, "height": 200})
        for _ in range(int(rng.integers(1, 4))):
            x, y, w, h = (float(v) for v in (*rng.uniform(0, 120, 2), *rng.uniform(8, 70, 2)))
            cat = int(rng.integers(1, 3))
            anns.append({"id": len(anns) + 1, "image_id": i, "category_id": cat, "bbox": [x, y, w, h],
                         "area": w * h, "iscrowd": 0})
            jitter = rng.normal(0, 4, 4)
            results.append({"image_id": i, "category_id": cat if rng.random() < 0.8 else 3 - cat,
                            "bbox": [x + jitter[0], y + jitter[1], w + jitter[2], h + jitter[3]],
                            "score": float(rng.uniform(0.2, 1.0))})
        results.append({"image_id": i, "category_id": 1, "bbox": [*rng.uniform(0, 150, 2).tolist(), 30.0, 30.0],
                        "score": float(rng.uniform(0, 0.6))})
    return {"images": images, "annotations": anns, "categories": cats}, results


def test_per_class_rows_equal_pycocotools_classwise():
    gt, results = _case()
    precision, names = coco_precision(gt, results)
    rows = per_class_ap(precision, names)
    ref = coco_evaluate(gt, results, classwise=True)["classwise_detail"]
    keys = {"AP": "mAP", "AP50": "mAP_50", "AP75": "mAP_75", "APs": "mAP_s", "APm": "mAP_m", "APl": "mAP_l"}
    assert [r["class"] for r in rows] == ["a", "b", "empty"]
    for row in rows:
        for ours, theirs in keys.items():
            a, b = row[ours], ref[row["class"]][theirs]
            assert (math.isnan(a) and math.isnan(b)) or a == b, (row["class"], ours, a, b)
    assert math.isnan(rows[2]["AP"])  # no ground truth: undefined, an empty CSV cell
    assert ap_csv(rows).splitlines()[3] == "empty,,,,,,"


def test_detection_reports_write_readable_files(tmp_path):
    gt, results = _case(1)
    report = detection_reports(gt, results, tmp_path)
    for key in ("pr_curve", "per_class_ap", "confusion_matrix"):
        assert (tmp_path / report["files"][key].split("/")[-1]).is_file()
    assert cv2.imread(str(tmp_path / "pr_curve.png")).shape[2] == 3
    assert (tmp_path / "confusion_matrix.csv").read_text().startswith("gt \\ pred,a,b,empty,background")


def test_ground_truth_and_prediction_side_by_side():
    from det.core.analysis.reports import draw_gt_pred
    from det.core.structures import Instances

    import torch

    img = np.full((320, 480, 3), 90, np.uint8)
    pred = Instances(bboxes=torch.tensor([[150.0, 50, 300, 200]]), labels=torch.tensor([1]), scores=torch.tensor([0.8]))
    out = draw_gt_pred(img, np.array([[50.0, 50, 200, 200]]), np.array([0]), pred, ["a", "b"])
    assert out.shape[1] == 2 * 480 + 4 and out.shape[0] > 320  # two panels and a caption band
    left, right = out[-320:, :480], out[-320:, 484:]
    assert (left[125, 50] != 90).any() and (right[125, 50] == 90).all()  # gt box only on the left
    assert (right[125, 150] != 90).any()  # predicted box on the right
    small = draw_gt_pred(img[:64, :96], np.array([[10.0, 10, 40, 40]]), np.array([0]), pred, ["a", "b"])
    assert small.shape[1] == 2 * 480 + 4  # a 64 px image is drawn 5x larger: labels stay small beside it
