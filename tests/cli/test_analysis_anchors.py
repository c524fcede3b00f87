"""`det optimize-anchors` end to end: --ann and PRESET modes, outputs, exit codes."""
from __future__ import annotations

import json

import numpy as np
import pytest


def coco(tmp_path, n=60):
    rng = np.random.default_rng(0)
    images = [{"id": i, "width": 640, "height": 480, "file_name": f"{i}.jpg"} for i in range(1, n + 1)]
    anns = []
    for i in range(1, n + 1):
        for _ in range(5):
            w, h = rng.uniform(8, 200), rng.uniform(8, 200)
            anns.append({"id": len(anns) + 1, "image_id": i, "category_id": 1, "bbox": [10, 10, w, h], "area": w * h,
                         "iscrowd": 0})
    p = tmp_path / "gt.json"
    p.write_text(json.dumps({"images": images, "annotations": anns, "categories": [{"id": 1, "name": "o"}]}))
    return p


def test_ann_mode(det_inproc, tmp_path):
    gt = coco(tmp_path)
    r = det_inproc("optimize-anchors", "--ann", gt, "--algorithm", "kmeans", "--input-shape", "320", "320",
            "--num-anchors", "6", "--seed", "3", "--out-dir", tmp_path / "a")
    assert r.returncode == 0, r.stderr
    res = json.loads((tmp_path / "a" / "anchor_optimize_result.json").read_text())
    assert len(res["anchors"]) == 6 and res["num_boxes"] == 300 and 0.5 < res["mean_iou"] <= 1
    assert res["set"] in r.stdout and "--set model.bbox_head.anchor_generator.base_sizes=" in r.stdout
    r = det_inproc("optimize-anchors", "--ann", gt, "--input-shape", "320", "320", "--out-dir", tmp_path / "a")
    assert r.returncode == 2 and "already exists" in r.stderr


@pytest.mark.slow
def test_preset_mode(det_inproc, tmp_path):
    gt = coco(tmp_path)
    preset = tmp_path / "yolo.yaml"
    preset.write_text(
        "model:\n  type: YOLOV3\n  bbox_head:\n    anchor_generator:\n      type: YOLOAnchorGenerator\n"
        "      base_sizes: [[[116, 90], [156, 198], [373, 326]], [[30, 61], [62, 45], [59, 119]], [[10, 13], [16, 30], [33, 23]]]\n"
        f"data:\n  train:\n    dataset: {{type: CocoDataset, ann_file: {gt}}}\n")
    r = det_inproc("optimize-anchors", preset, "--algorithm", "differential-evolution", "--input-shape", "320", "320",
            "--iters", "5", "--out-dir", tmp_path / "b", "--json")
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert res["num_anchors"] == 9 and res["algorithm"] == "differential-evolution"
    assert res["set"].startswith("--set model.bbox_head.anchor_generator.base_sizes=[[[")


def test_errors(det_inproc, tmp_path):
    r = det_inproc("optimize-anchors", "--ann", tmp_path / "missing.json", "--input-shape", "320", "320")
    assert r.returncode == 2 and "missing.json" in r.stderr
    bad = tmp_path / "bad.json"
    bad.write_text('{"images": 3}')
    r = det_inproc("optimize-anchors", "--ann", bad, "--out-dir", tmp_path)
    assert r.returncode == 2 and "bad.json" in r.stderr
    r = det_inproc("optimize-anchors", "--out-dir", tmp_path)
    assert r.returncode == 2 and "PRESET or --ann" in r.stderr
