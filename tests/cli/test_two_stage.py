"""Mask R-CNN through the CLI: `det train` on the demo preset shrunk to 64 px shapes, `det test`
with bbox + segm metrics and --show-dir drawings, `det infer` writing RLE masks."""
from __future__ import annotations

import json

import pytest
from pycocotools import mask as mask_utils

from tests.conftest import TINY_DEMO_OVERRIDES

SMALL = TINY_DEMO_OVERRIDES + (
    "data.train.pipeline.2.scale=[64,64]", "data.val.pipeline.2.scale=[64,64]", "data.test.pipeline.2.scale=[64,64]",
    "model.test_cfg.rcnn.score_thr=0.0",
)


@pytest.mark.slow
def test_mask_rcnn_train_test_infer(tmp_path, det_inproc):
    sets = [x for s in SMALL for x in ("--set", s)]
    r = det_inproc("train", "demo/mask_rcnn_r18", "--work-dir", tmp_path / "w", "--device", "cpu", *sets)
    assert r.returncode == 0, r.stderr
    ckpt = tmp_path / "w" / "last.pt"
    assert ckpt.exists()

    r = det_inproc("test", ckpt, "--work-dir", tmp_path / "t", "--show-dir", tmp_path / "vis", "--json",
                   "--device", "cpu")
    assert r.returncode == 0, r.stderr
    metrics = json.loads((tmp_path / "t" / "metrics.json").read_text())["metrics"]
    assert "coco/segm_mAP" in metrics and "coco/bbox_mAP" in metrics
    assert list((tmp_path / "vis").glob("*.png")) or list((tmp_path / "vis").glob("*.jpg"))

    from det.core.config import load_preset
    from det.core.engine.runner import build_split

    dataset, _, _ = build_split(load_preset("demo/mask_rcnn_r18", list(SMALL)), "val")
    image = dataset.data_list[0]["img_path"]
    r = det_inproc("infer", str(image), "--weights", ckpt, "--out-dir", tmp_path / "inf", "--score-thr", "0.0",
                   "--device", "cpu", "--no-vis")
    assert r.returncode == 0, r.stderr
    preds = list((tmp_path / "inf" / "preds").glob("*.json"))
    assert preds
    data = json.loads(preds[0].read_text())
    assert data["masks"] and len(data["masks"]) == len(data["bboxes"])
    rle = data["masks"][0]
    h, w = mask_utils.decode({"size": rle["size"], "counts": rle["counts"].encode()}).shape
    assert (h, w) == tuple(rle["size"])
