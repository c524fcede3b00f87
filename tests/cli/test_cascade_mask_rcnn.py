"""Cascade Mask R-CNN through the CLI at tiny sizes: `det flops` on the COCO preset, then on the demo
shrunk to 64 px shapes `det train` (mask losses of every stage logged), `det test --out` (masks
as COCO RLE) and `det infer` (RLE masks in the JSON, mask overlays drawn)."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from pycocotools import mask as mask_utils

from tests.cli.test_realtime import _image_folder, _sets

SCORE0 = "model.test_cfg.rcnn.score_thr=0.0"


@pytest.mark.slow
def test_flops_of_the_coco_preset(det_inproc):
    r = det_inproc("flops", "cascade_rcnn/cascade-mask-rcnn_r50_fpn_1x_coco", "--shape", "64", "64", "--json")
    assert r.returncode == 0, r.stderr
    # MMDetection's model zoo: Cascade Mask R-CNN R-50-FPN has 77.3 M parameters
    assert json.loads(r.stdout)["params"] / 1e6 == pytest.approx(77.3, rel=0.01)


@pytest.mark.slow
def test_demo_trains_tests_with_rle_and_draws_masks(det_inproc, tmp_path):
    work = tmp_path / "w"
    r = det_inproc("train", "demo/cascade_mask_rcnn_r18", "--work-dir", work, "--device", "cpu",
                   *_sets("data.train.pipeline.2.scale=[64,64]", "data.val.pipeline.2.scale=[64,64]",
                          "data.test.pipeline.2.scale=[64,64]"))
    assert r.returncode == 0, r.stderr
    records = [json.loads(line) for line in (work / "log.jsonl").read_text().splitlines()]
    assert any(all(f"loss_mask_s{i}" in rec for i in range(3)) for rec in records)

    r = det_inproc("test", work / "last.pt", "--out", tmp_path / "r.json", "--work-dir", tmp_path / "t",
                   "--device", "cpu", "--set", SCORE0)
    assert r.returncode == 0, r.stderr
    assert "coco/segm_mAP" in r.stdout and "coco/bbox_mAP" in r.stdout
    dets = json.loads((tmp_path / "r.json").read_text())
    assert dets and all({"segmentation", "bbox", "score"} <= d.keys() for d in dets)
    seg = dets[0]["segmentation"]
    assert mask_utils.decode({"size": seg["size"], "counts": seg["counts"].encode()}).shape == tuple(seg["size"])

    r = det_inproc("infer", _image_folder(tmp_path / "imgs"), "--weights", work / "last.pt", "--out-dir",
                   tmp_path / "o", "--score-thr", "0.0", "--device", "cpu", "--set", SCORE0)
    assert r.returncode == 0, r.stderr
    rec = json.loads((tmp_path / "o" / "preds" / "a.json").read_text())
    assert len(rec["masks"]) == len(rec["scores"]) > 0 and rec["masks"][0]["size"] == [64, 80]
    drawn = cv2.imread(str(tmp_path / "o" / "vis" / "a.jpg"))
    assert drawn.shape == (64, 80, 3)
    # overlays: the drawing differs from the plain image inside a predicted mask
    plain = cv2.imread(str(tmp_path / "imgs" / "a.png"))
    mask = mask_utils.decode({"size": rec["masks"][0]["size"], "counts": rec["masks"][0]["counts"].encode()})
    if mask.any():
        assert np.abs(drawn.astype(int) - plain.astype(int))[mask.astype(bool)].max() > 0
