"""SOLOv2 through the CLI at tiny sizes: `det flops` of the COCO preset (parameters as MMDetection
builds the model), then `det train`, `det test --out` (masks as COCO RLE, boxes enclosing them)
and `det infer` (drawn images with mask overlays) on the demo preset; `det export` refuses it."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from pycocotools import mask as mask_utils

from tests.cli.test_realtime import _image_folder, _sets

# an untrained model's scores sit under every threshold: keep all of them
KEEP_ALL = ("--set", "model.test_cfg.score_thr=0.0", "--set", "model.test_cfg.filter_thr=0.0")
# parameters of MMDetection 3.3's solov2_r50_fpn_1x_coco model (counted on the model its config builds)
PARAMS_R50 = 46_592_912


@pytest.mark.slow
def test_flops_of_the_coco_preset(det_inproc):
    r = det_inproc("flops", "solov2/solov2_r50_fpn_1x_coco", "--shape", "64", "64", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["params"] == PARAMS_R50


@pytest.mark.slow
def test_solov2_demo_trains_tests_with_rle_and_draws_masks(det_inproc, tmp_path):
    work = tmp_path / "w"
    r = det_inproc("train", "demo/solov2_r18", "--work-dir", work, "--device", "cpu", *_sets())
    assert r.returncode == 0, r.stderr
    records = [json.loads(line) for line in (work / "log.jsonl").read_text().splitlines()]
    assert any("loss_mask" in rec and "loss_cls" in rec for rec in records)
    r = det_inproc("test", work / "last.pt", "--out", tmp_path / "r.json", "--work-dir", tmp_path / "t", "--device",
                   "cpu", *KEEP_ALL)
    assert r.returncode == 0, r.stderr
    assert "coco/segm_mAP" in r.stdout
    dets = json.loads((tmp_path / "r.json").read_text())
    assert dets and all({"segmentation", "bbox", "score"} <= d.keys() for d in dets)
    for d in dets[:20]:  # the box is the one enclosing the mask
        seg = d["segmentation"]
        m = mask_utils.decode({"size": seg["size"], "counts": seg["counts"].encode()})
        assert m.shape == tuple(seg["size"])
        ys, xs = np.nonzero(m)
        assert d["bbox"] == pytest.approx([xs.min(), ys.min(), xs.max() + 1 - xs.min(), ys.max() + 1 - ys.min()],
                                          abs=0.01)
    r = det_inproc("infer", _image_folder(tmp_path / "imgs"), "--weights", work / "last.pt", "--out-dir",
                   tmp_path / "o", "--score-thr", "0.0", "--device", "cpu", *KEEP_ALL)
    assert r.returncode == 0, r.stderr
    rec = json.loads((tmp_path / "o" / "preds" / "a.json").read_text())
    assert len(rec["masks"]) == len(rec["scores"]) > 0 and rec["masks"][0]["size"] == [64, 80]
    drawn = cv2.imread(str(tmp_path / "o" / "vis" / "a.jpg"))
    plain = cv2.imread(str(tmp_path / "imgs" / "a.png"))
    assert drawn.shape == (64, 80, 3) and np.abs(drawn.astype(int) - plain).mean() > 1  # overlays drawn
    r = det_inproc("export", work / "last.pt", "--format", "onnx", "--out", tmp_path / "m.onnx")
    assert r.returncode == 2 and "SOLOv2 cannot be exported" in r.stderr
