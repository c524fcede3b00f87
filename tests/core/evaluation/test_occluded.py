"""Occluded / separated mask recall on a hand-made case with known values; the pickle converter
refuses without --trust-pickle; `det eval --occluded-separated`."""
from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from det.core.evaluation.coco import load_coco_gt
from det.core.evaluation.occluded import occluded_separated_recall


def rle(x0, y0, x1, y1, bytes_counts=False) -> dict:
    m = np.zeros((40, 40), np.uint8, order="F")
    m[y0:y1, x0:x1] = 1
    r = mask_utils.encode(m)
    if not bytes_counts:
        r["counts"] = r["counts"].decode()
    return r


GT = {"images": [{"id": 1, "file_name": "a.jpg", "width": 40, "height": 40},
                 {"id": 2, "file_name": "b.jpg", "width": 40, "height": 40}],
      "categories": [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}],
      "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "area": 100,
                       "segmentation": rle(0, 0, 10, 10)}]}


def item(file_name, cls, box):
    return {"file_name": file_name, "class": cls, "bbox": [box[0], box[1], box[2] - box[0], box[3] - box[1]],
            "mask": rle(*box), "extra": 0}


def test_known_recall():
    lists = {"occluded": [item("a.jpg", "cat", (0, 0, 10, 10)),   # exact cat mask, score .9: recalled
                          item("a.jpg", "dog", (18, 18, 30, 30)),  # dog there, IoU 80/144 < .75: missed
                          item("b.jpg", "cat", (0, 0, 20, 20))],   # only detection scores below .3: missed
             "separated": [item("a.jpg", "dog", (20, 20, 30, 30))]}  # IoU 80/100 >= .75: recalled
    dets = [{"image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "score": 0.9, "segmentation": rle(0, 0, 10, 10)},
            {"image_id": 1, "category_id": 2, "bbox": [20, 20, 8, 10], "score": 0.5, "segmentation": rle(20, 20, 28, 30)},
            {"image_id": 2, "category_id": 1, "bbox": [0, 0, 20, 20], "score": 0.2, "segmentation": rle(0, 0, 20, 20)}]
    res = occluded_separated_recall(load_coco_gt(GT), dets, lists)
    assert res == {"occluded_recall": pytest.approx(100 / 3), "occluded_correct": 1, "occluded_total": 3,
                   "separated_recall": 100.0, "separated_correct": 1, "separated_total": 1}
    assert occluded_separated_recall(load_coco_gt(GT), dets, lists, score_thr=0.1)["occluded_correct"] == 2


def test_convert_pickle_needs_trust_and_eval_reads_json(det_inproc, tmp_path):
    occ = [["a.jpg", "cat", 0, [0, 0, 10, 10], rle(0, 0, 10, 10, bytes_counts=True)]]
    (tmp_path / "occluded_coco.pkl").write_bytes(pickle.dumps(occ))
    out = tmp_path / "occ.json"
    r = det_inproc("convert", "occluded-separated", tmp_path / "occluded_coco.pkl", "--out", out)
    assert r.returncode == 2 and "--trust-pickle" in r.stderr and not out.exists()
    r = det_inproc("convert", "occluded-separated", tmp_path / "occluded_coco.pkl", "--out", out, "--trust-pickle")
    assert r.returncode == 0, r.stderr
    data = json.loads(out.read_text())
    assert data["occluded"][0]["class"] == "cat" and isinstance(data["occluded"][0]["mask"]["counts"], str)
    (tmp_path / "gt.json").write_text(json.dumps(GT))
    (tmp_path / "res.json").write_text(json.dumps([{"image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10],
                                                    "score": 0.9, "segmentation": rle(0, 0, 10, 10)}]))
    r = det_inproc("eval", tmp_path / "res.json", "--ann", tmp_path / "gt.json", "--metric", "segm",
                   "--occluded-separated", out, "--json")
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert res["occluded_recall"] == 100.0 and res["coco/segm_mAP"] == pytest.approx(1.0)
    r = det_inproc("eval", tmp_path / "res.json", "--ann", tmp_path / "gt.json", "--occluded-separated", out)
    assert r.returncode == 2 and "--metric segm" in r.stderr
