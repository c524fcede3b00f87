"""Panoptic FPN through the CLI: `det train` on the demo preset shrunk to 64 px panoptic shapes,
`det test` scoring PQ (CocoPanopticMetric) and writing COCO panoptic PNGs + JSON with --out and
drawn overlays with --show-dir, `det infer` writing panoptic.json + PNGs and drawn overlays."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from det.core.data.panoptic_io import read_segment_ids

TINY = tuple(
    [f"data.{split}.dataset.{k}={v}" for split in ("train", "val", "test")
     for k, v in (("num_train", 4), ("num_val", 2), ("size", 64))]
    + ["data.train.pipeline.2.scale=[64,64]", "data.val.pipeline.1.scale=[64,64]",
       "data.test.pipeline.1.scale=[64,64]",
       "data.train.batch_size=2", "data.train.num_workers=0", "data.val.num_workers=0", "data.val.batch_size=2",
       "data.test.num_workers=0", "data.test.batch_size=2", "data.train.persistent_workers=false",
       "data.val.persistent_workers=false", "data.test.persistent_workers=false",
       "train.max_epochs=1", "train.val_interval=1", "train.log_interval=1", "train.checkpoint.interval=1",
       "model.test_cfg.rcnn.score_thr=0.0", "model.test_cfg.panoptic.stuff_area_limit=1"])


def _check_panoptic_files(json_path, num_images: int) -> dict:
    doc = json.loads(json_path.read_text())
    assert len(doc["annotations"]) == num_images and doc["categories"]
    cats = {c["id"]: c for c in doc["categories"]}
    for ann in doc["annotations"]:
        ids = read_segment_ids(json_path.with_suffix("") / ann["file_name"])
        present = set(np.unique(ids).tolist()) - {0}
        assert present == {s["id"] for s in ann["segments_info"]}
        for s in ann["segments_info"]:
            assert s["category_id"] in cats and s["area"] == int((ids == s["id"]).sum())
    return doc


@pytest.mark.slow
def test_panoptic_fpn_train_test_infer(tmp_path, det_inproc):
    sets = [x for s in TINY for x in ("--set", s)]
    r = det_inproc("train", "demo/panoptic_fpn_r18", "--work-dir", tmp_path / "w", "--device", "cpu", *sets)
    assert r.returncode == 0, r.stderr
    ckpt = tmp_path / "w" / "last.pt"
    assert ckpt.exists()
    log = [json.loads(line) for line in (tmp_path / "w" / "log.jsonl").read_text().splitlines()]
    assert any("loss_seg" in rec for rec in log)

    out = tmp_path / "t" / "pan.json"
    r = det_inproc("test", ckpt, "--work-dir", tmp_path / "t", "--out", out, "--show-dir", tmp_path / "vis",
                   "--json", "--device", "cpu")
    assert r.returncode == 0, r.stderr
    metrics = json.loads((tmp_path / "t" / "metrics.json").read_text())["metrics"]
    assert {"coco_panoptic/PQ", "coco_panoptic/PQ_th", "coco_panoptic/PQ_st"} <= set(metrics)
    doc = _check_panoptic_files(out, 2)
    assert [c["name"] for c in doc["categories"]][-3:] == ["sky", "ground", "wall"]
    drawn = sorted((tmp_path / "vis").glob("*.png"))
    assert len(drawn) == 2 and cv2.imread(str(drawn[0])).shape[:2] == (64, 64)
    r = det_inproc("test", ckpt, "--work-dir", tmp_path / "t", "--out", out, "--device", "cpu")
    assert r.returncode == 2 and "already exists" in r.stderr

    from det.core.config import load_preset
    from det.core.engine.runner import build_split

    dataset, _, _ = build_split(load_preset("demo/panoptic_fpn_r18", list(TINY)), "val")
    images = [d["img_path"] for d in dataset.data_list]
    r = det_inproc("infer", *images, "--weights", ckpt, "--out-dir", tmp_path / "inf", "--score-thr", "0.0",
                   "--device", "cpu")
    assert r.returncode == 0, r.stderr
    doc = _check_panoptic_files(tmp_path / "inf" / "panoptic.json", 2)
    assert {a["file_name"] for a in doc["annotations"]} == {f"{p.rsplit('/', 1)[-1].rsplit('.', 1)[0]}.png"
                                                          for p in images}
    assert len(list((tmp_path / "inf" / "vis").glob("*.jpg"))) == 2
    pred = json.loads(next((tmp_path / "inf" / "preds").glob("*.json")).read_text())
    assert "panoptic_segments" in pred
