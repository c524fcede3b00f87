"""`det eval` end to end: numbers equal pycocotools' COCOeval, exit codes on bad files."""
from __future__ import annotations

import contextlib
import io
import json
import sys
from pathlib import Path

import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "core" / "analysis"))
from cocofixtures import random_coco, write  # noqa: E402


def test_eval_matches_pycocotools_and_errors(det_inproc, tmp_path):
    gt, dets = random_coco(11, max_fp=3)
    gt_p, res_p = write(tmp_path / "gt.json", gt), write(tmp_path / "res.json", dets)
    r = det_inproc("eval", res_p, "--ann", gt_p, "--classwise", "--json")
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(str(gt_p))
        ev = COCOeval(coco, coco.loadRes(str(res_p)), "bbox")
        ev.evaluate(), ev.accumulate(), ev.summarize()
    assert got["coco/bbox_mAP"] == pytest.approx(ev.stats[0], abs=1e-12)
    assert got["coco/bbox_mAP_50"] == pytest.approx(ev.stats[1], abs=1e-12)
    assert set(got["classwise"]) == {"c0", "c1", "c2", "c3"}
    r = det_inproc("eval", res_p, "--ann", gt_p, "--metric", "proposal")
    assert r.returncode == 0 and "coco/AR@100" in r.stdout
    for bad, needle in [(tmp_path / "nope.json", "nope.json"),
                        (write(tmp_path / "obj.json", {"a": 1}), "obj.json"),
                        (write(tmp_path / "ids.json", [{**dets[0], "image_id": 777}]), "777")]:
        r = det_inproc("eval", bad, "--ann", gt_p)
        assert r.returncode == 2 and needle in r.stderr, r.stderr
    r = det_inproc("eval", res_p, "--ann", gt_p, "--metric", "segm")
    assert r.returncode == 2 and "res.json" in r.stderr and "segmentation" in r.stderr
    r = det_inproc("eval", res_p, "--ann", gt_p, "--metric", "bbx")
    assert r.returncode == 2 and "did you mean 'bbox'" in r.stderr
