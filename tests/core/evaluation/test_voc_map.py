"""VOC mAP against hand-computed cases ('area' and '11points', difficult boxes ignored)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from det.core.evaluation.evaluator import VOCMetric
from det.core.evaluation.voc import voc_class_ap, voc_map
from det.core.structures import DetSample, Instances

# image A: a hit, a detection on a difficult box (ignored), a miss, a duplicate;
# image B: a hit with IoU 90/110.
DETS = [np.array([[0, 0, 10, 10, 0.9], [20, 20, 30, 30, 0.8], [50, 50, 60, 60, 0.7], [0, 0, 10, 10, 0.6]]),
        np.array([[1, 0, 11, 10, 0.65]])]
GTS = [np.array([[0, 0, 10, 10], [20, 20, 30, 30]]), np.array([[0, 0, 10, 10]])]
IGN = [np.array([False, True]), np.array([False])]


def test_area_mode_by_hand():
    # ranked: tp(.9) fp(.7) tp(.65) fp(.6); recall .5 .5 1 1; precision 1 .5 2/3 .5
    r = voc_class_ap(DETS, GTS, IGN, 0.5, "area")
    assert r["num_gts"] == 2 and r["num_dets"] == 4
    assert r["ap"] == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)


def test_11points_mode_by_hand():
    r = voc_class_ap(DETS, GTS, IGN, 0.5, "11points")
    assert r["ap"] == pytest.approx((6 * 1 + 5 * 2 / 3) / 11)


def test_difficult_box_counts_when_not_ignored_and_iou_threshold():
    r = voc_class_ap(DETS, GTS, [np.zeros(2, bool), np.zeros(1, bool)], 0.5, "area")
    # now: tp tp fp tp fp over 3 positives: P 1 1 2/3 3/4 3/5, R 1/3 2/3 2/3 1 1
    assert r["ap"] == pytest.approx(1 / 3 + 1 / 3 + 1 / 3 * 3 / 4)
    strict = voc_class_ap(DETS, GTS, IGN, 0.85, "area")  # image B's IoU 0.818 is a miss now
    # tp(.9) fp(.7) fp(.65) fp(.6): recall .5 -> AP .5
    assert strict["ap"] == pytest.approx(0.5)


def test_map_averages_classes_with_ground_truth():
    dets = [[DETS[0], np.array([[0, 0, 5, 5, 0.5]]), np.zeros((0, 5))], [DETS[1], np.zeros((0, 5)), np.zeros((0, 5))]]
    gts = [np.concatenate([GTS[0], [[70, 70, 80, 80]]]), GTS[1]]
    labels = [np.array([0, 0, 2]), np.array([0])]
    ign = [np.array([False, True, False]), np.array([False])]
    mean_ap, per_class = voc_map(dets, gts, labels, ign, 3, mode="area")
    assert per_class[1]["num_gts"] == 0  # class 1 has only a false positive: left out of the mean
    assert per_class[2]["ap"] == 0.0 and per_class[2]["num_gts"] == 1
    assert mean_ap == pytest.approx((0.5 + 1 / 3 + 0.0) / 2)


def test_voc_metric_maps_ground_truth_back_to_original_image():
    class DS:
        classes = ("a", "b")

    metric = VOCMetric(DS())
    gt = Instances(bboxes=torch.tensor([[0.0, 0.0, 20.0, 20.0]]), labels=torch.tensor([1]), ignore=torch.tensor([False]))
    sample = DetSample(img_id=3, ori_shape=(50, 50), img_shape=(100, 100), scale_factor=(2.0, 2.0),
                       flip_direction="horizontal", gt=gt)
    pred = Instances(bboxes=torch.tensor([[40.0, 0.0, 50.0, 10.0]]), labels=torch.tensor([1]), scores=torch.tensor([0.9]))
    metric.reset()
    metric.process([sample], [pred])
    assert metric.evaluate() == {"pascal_voc/mAP": 1.0, "pascal_voc/AP50": 1.0}


def test_det_eval_metric_voc_on_coco_files(det_inproc, tmp_path):
    import json

    # The hand case above as COCO files: image 1 = A (its second box a crowd), image 2 = B.
    gt = {"images": [{"id": 1, "width": 100, "height": 100}, {"id": 2, "width": 100, "height": 100}],
          "categories": [{"id": 5, "name": "thing"}],
          "annotations": [{"id": 1, "image_id": 1, "category_id": 5, "bbox": [0, 0, 10, 10], "iscrowd": 0, "area": 100},
                          {"id": 2, "image_id": 1, "category_id": 5, "bbox": [20, 20, 10, 10], "iscrowd": 1, "area": 100},
                          {"id": 3, "image_id": 2, "category_id": 5, "bbox": [0, 0, 10, 10], "iscrowd": 0, "area": 100}]}
    res = [{"image_id": i, "category_id": 5, "bbox": [d[0], d[1], d[2] - d[0], d[3] - d[1]], "score": d[4]}
           for i, img in ((1, DETS[0]), (2, DETS[1])) for d in img.tolist()]
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "res.json").write_text(json.dumps(res))
    r = det_inproc("eval", tmp_path / "res.json", "--ann", tmp_path / "gt.json", "--metric", "voc", "--classwise", "--json")
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    assert got["pascal_voc/mAP"] == pytest.approx(0.5 * 1 + 0.5 * 2 / 3) == got["pascal_voc/thing_AP50"]
