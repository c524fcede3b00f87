"""`det analyze-results` end to end on tiny images."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "core" / "analysis"))
from cocofixtures import random_coco, write  # noqa: E402


def test_analyze_results(det_inproc, tmp_path):
    gt, dets = random_coco(2, n_img=8)
    img_dir = tmp_path / "imgs"
    img_dir.mkdir()
    for img in gt["images"]:
        cv2.imwrite(str(img_dir / img["file_name"]), np.full((img["height"], img["width"], 3), 90, np.uint8))
    gt_p, res_p = write(tmp_path / "gt.json", gt), write(tmp_path / "res.json", dets)
    out = tmp_path / "out"
    r = det_inproc("analyze-results", res_p, "--ann", gt_p, "--img-dir", img_dir, "--topk", "3", "--out-dir", out, "--json")
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert len(res["best"]) == 3 and len(res["worst"]) == 3
    assert res["best"][0]["ap"] >= res["best"][-1]["ap"] >= res["worst"][0]["ap"]
    for f in res["files"]["good"] + res["files"]["bad"]:
        img = cv2.imread(f)
        assert img is not None and img.shape[1] > 2 * 200  # ground truth | predictions side by side
    table = json.loads((out / "per_image_ap.json").read_text())
    assert len(table) == res["images_ranked"]
    r = det_inproc("analyze-results", res_p, "--ann", gt_p, "--img-dir", img_dir, "--out-dir", out)
    assert r.returncode == 2 and "already exists" in r.stderr
    (img_dir / gt["images"][0]["file_name"]).unlink()
    r = det_inproc("analyze-results", res_p, "--ann", gt_p, "--img-dir", img_dir, "--out-dir", tmp_path / "o2",
                   "--topk", "50")
    assert r.returncode == 2 and gt["images"][0]["file_name"] in r.stderr
    r = det_inproc("analyze-results", write(tmp_path / "x.json", [{**dets[0], "image_id": 99}]), "--ann", gt_p,
                   "--img-dir", img_dir, "--out-dir", tmp_path / "o3")
    assert r.returncode == 2 and "x.json" in r.stderr and "99" in r.stderr
