"""`det test` on the session's tiny checkpoint: metrics table, metrics.json, COCO results that
pycocotools scores to the same numbers, --format-only, --show-dir, --tta, PRESET CKPT form."""
from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from tests.conftest import TINY_DEMO_OVERRIDES


@pytest.mark.slow
def test_metrics_match_pycocotools_on_written_results(tmp_path, det_inproc, tiny_checkpoint):
    results = tmp_path / "results.json"
    r = det_inproc("test", tiny_checkpoint, "--out", results, "--work-dir", tmp_path / "t", "--device", "cpu",
                   "--set", "train.max_epochs=1")
    assert r.returncode == 0, r.stderr
    assert "coco/bbox_mAP" in r.stdout and "metrics.json" in r.stdout
    summary = json.loads((tmp_path / "t" / "metrics.json").read_text())
    ours = summary["metrics"]
    dets = json.loads(results.read_text())
    assert dets and {"image_id", "category_id", "bbox", "score"} <= dets[0].keys()

    from det.core.config import load_preset
    from det.core.engine.runner import build_split

    cfg = load_preset("demo/rtmdet_tiny", list(TINY_DEMO_OVERRIDES))
    dataset, _, _ = build_split(cfg, "val")
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = dataset.coco_gt()
        gt.createIndex()
        ev = COCOeval(gt, gt.loadRes(str(results)), "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    ref = dict(zip(["coco/bbox_mAP", "coco/bbox_mAP_50", "coco/bbox_mAP_75", "coco/bbox_mAP_s", "coco/bbox_mAP_m",
                    "coco/bbox_mAP_l"], ev.stats[:6]))
    for key, value in ref.items():
        assert ours[key] == pytest.approx(float(value), abs=1e-12), key

    r = det_inproc("test", tiny_checkpoint, "--out", results, "--work-dir", tmp_path / "t")
    assert r.returncode == 2 and "--force" in r.stderr  # never overwrite the user's results


@pytest.mark.slow
def test_preset_ckpt_form_format_only_show_dir_and_tta(tmp_path, det_inproc, tiny_checkpoint):
    sets = [x for s in TINY_DEMO_OVERRIDES for x in ("--set", s)]
    out = tmp_path / "r.json"
    r = det_inproc("test", "demo/rtmdet_tiny", tiny_checkpoint, *sets, "--format-only", "--out", out,
                   "--work-dir", tmp_path / "fo", "--device", "cpu")
    assert r.returncode == 0, r.stderr
    assert json.loads(out.read_text()) and not (tmp_path / "fo" / "metrics.json").exists()
    r = det_inproc("test", tiny_checkpoint, "--tta", "--show-dir", tmp_path / "vis", "--score-thr", "0.0",
                   "--work-dir", tmp_path / "tta", "--json", "--device", "cpu")
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["tta"] is True and "coco/bbox_mAP" in summary["metrics"]
    assert len(list((tmp_path / "vis").glob("*.png"))) == summary["num_images"] == 2


def test_errors(tmp_path, det_inproc):
    r = det_inproc("test", tmp_path / "missing.pt")
    assert r.returncode == 2 and "missing.pt: checkpoint not found" in r.stderr
    r = det_inproc("test", tmp_path / "missing.pt", "--format-only")
    assert r.returncode == 2 and "--format-only needs --out" in r.stderr
