"""Cityscapes instance AP on a hand-made instanceIds image with values worked out below."""
from __future__ import annotations

import json

import numpy as np
import pytest

from det.core.errors import DetError
from det.core.evaluation.cityscapes import cityscapes_evaluate

H = W = 40
CATS = [{"id": i, "name": n} for i, n in ((24, "person"), (25, "rider"), (26, "car"), (27, "truck"), (28, "bus"),
                                           (31, "train"), (32, "motorcycle"), (33, "bicycle"))]


def region(rows, cols) -> np.ndarray:
    m = np.zeros((H, W), bool)
    m[rows[0]:rows[1], cols[0]:cols[1]] = True
    return m


def rle(mask: np.ndarray) -> dict:
    from pycocotools import mask as mask_utils

    r = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": r["size"], "counts": r["counts"].decode()}


def write_case(tmp_path):
    import cv2

    ids = np.full((H, W), 7, np.uint16)                 # road
    ids[region((30, 40), (0, 10))] = 0                  # void (unlabeled), 100 px
    ids[region((0, 10), (0, 20))] = 26000               # car, 200 px
    ids[region((0, 10), (25, 35))] = 26001              # car, 100 px
    ids[region((20, 25), (20, 25))] = 26002             # car under 100 px: not counted
    ids[region((12, 20), (0, 10))] = 24                 # person crowd region
    ids[region((20, 30), (30, 40))] = 24000             # person, 100 px
    (tmp_path / "gt" / "city").mkdir(parents=True)
    cv2.imwrite(str(tmp_path / "gt" / "city" / "a_gtFine_instanceIds.png"), ids)
    gt = {"images": [{"id": 1, "file_name": "city/a_leftImg8bit.png", "width": W, "height": H,
                      "segm_file": "city/a_gtFine_labelIds.png"}],
          "annotations": [{"id": 1, "image_id": 1, "category_id": 26, "bbox": [0, 0, 20, 10], "area": 200,
                           "iscrowd": 0, "segmentation": rle(region((0, 10), (0, 20)))}],
          "categories": CATS}
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    return tmp_path / "gt.json"


def pred(cat, score, rows, cols):
    return {"image_id": 1, "category_id": cat, "score": score, "segmentation": rle(region(rows, cols))}


RESULTS = [
    pred(26, 0.9, (0, 10), (0, 20)),    # car 26000 exactly: TP
    pred(26, 0.8, (0, 10), (0, 12)),    # IoU 0.6 with 26000, already taken: FP
    pred(26, 0.7, (30, 40), (0, 10)),   # all void: ignored
    pred(26, 0.6, (0, 10), (25, 33)),   # IoU 0.8 with 26001: TP below 0.8, else FP (and 26001 missed)
    pred(26, 0.5, (20, 25), (20, 25)),  # the small car: ignored
    pred(24, 0.95, (12, 20), (0, 10)),  # the crowd: ignored
    pred(24, 0.3, (20, 30), (30, 35)),  # IoU 0.5 with 24000 (not above): FP; 24000 missed
]


def test_hand_made_values(tmp_path):
    got = cityscapes_evaluate(write_case(tmp_path), RESULTS, tmp_path / "gt")
    # car, thresholds 0.5-0.75: TP .9, FP .8, TP .6 -> points (p, r) = (2/3, 1), (1/2, 1/2), (1, 1/2),
    # (1, 0) with steps 1/4 each: 19/24; thresholds 0.8-0.95: TP .9, FP .8, FP .6, 1 missed -> 1/2.
    car50, car = 19 / 24, (6 * 19 / 24 + 4 * 0.5) / 10
    assert got["classwise"]["car"]["AP50"] == pytest.approx(car50, abs=1e-12)
    assert got["classwise"]["car"]["AP"] == pytest.approx(car, abs=1e-12)
    assert got["classwise"]["person"]["AP"] == 0.0 and np.isnan(got["classwise"]["bus"]["AP"])
    assert got["cityscapes/mAP"] == pytest.approx(car / 2, abs=1e-12)
    assert got["cityscapes/AP@50"] == pytest.approx(car50 / 2, abs=1e-12)


def test_errors(tmp_path):
    ann = write_case(tmp_path)
    with pytest.raises(DetError, match="differs from the image"):
        cityscapes_evaluate(ann, [{**RESULTS[0], "segmentation": rle(np.zeros((8, 8), bool))}], tmp_path / "gt")
    with pytest.raises(DetError, match="category ids"):
        cityscapes_evaluate(ann, [{**RESULTS[0], "category_id": 7}], tmp_path / "gt")
    with pytest.raises(DetError, match="instanceIds PNG"):
        cityscapes_evaluate(ann, RESULTS, tmp_path)


def test_det_eval_and_dataset_preset(det_inproc, tmp_path):
    from det.core.config import load_preset, preset_root
    from det.core.data import build_dataset

    ann = write_case(tmp_path)
    res = tmp_path / "res.json"
    res.write_text(json.dumps(RESULTS))
    r = det_inproc("eval", res, "--ann", ann, "--metric", "cityscapes", "--gt-dir", tmp_path / "gt", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["cityscapes/AP@50"] == pytest.approx(19 / 48, abs=1e-12)
    cfg = load_preset(preset_root() / "_base_" / "data" / "cityscapes_instance.yaml",
                      [f"data.test.dataset.data_root={tmp_path}/", "data.test.dataset.ann_file=gt.json"])
    ds = build_dataset(cfg["data"]["test"])
    assert ds.classes == ("person", "rider", "car", "truck", "bus", "train", "motorcycle", "bicycle")
    assert ds.coco_gt()["images"][0]["segm_file"] == "city/a_gtFine_labelIds.png"
