"""`det fuse-results` end to end: one table, fused file, MMDetection-style --weights, exit codes."""
from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "core" / "analysis"))
from cocofixtures import random_coco, write  # noqa: E402


def test_fuse_results(det_inproc, tmp_path):
    gt, dets = random_coco(4, n_img=10)
    gt_p = write(tmp_path / "gt.json", gt)
    paths = []
    for m in range(3):
        shifted = [{**d, "bbox": [d["bbox"][0] + m, d["bbox"][1], d["bbox"][2], d["bbox"][3]]} for d in dets]
        paths.append(write(tmp_path / f"m{m}.json", shifted))
    out = tmp_path / "fused.json"
    r = det_inproc("fuse-results", *paths, "--ann", gt_p, "--weights", "1", "2", "1", "--eval-single",
                   "--conf-type", "box_and_model_avg", "--out", out, "--json")
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert [row["name"] for row in res["table"]] == [str(p) for p in paths] + ["fused (WBF)"]
    fused = json.loads(out.read_text())
    assert len(fused) == res["detections"] and len(dets) // 2 < len(fused) < 3 * len(dets)
    assert set(fused[0]) == {"image_id", "category_id", "bbox", "score"}
    r = det_inproc("fuse-results", *paths, "--ann", gt_p, "--out", out)
    assert r.returncode == 2 and "already exists" in r.stderr
    r = det_inproc("fuse-results", *paths, "--ann", gt_p)
    assert r.returncode == 0 and "fused (WBF)" in r.stdout and "mAP_50" in r.stdout
    for bad, needle in [(tmp_path / "nope.json", "nope.json"),
                        (write(tmp_path / "schema.json", [{"image_id": 1}]), "schema.json"),
                        (write(tmp_path / "ids.json", [{**dets[0], "image_id": 555}]), "555")]:
        r = det_inproc("fuse-results", paths[0], bad, "--ann", gt_p)
        assert r.returncode == 2 and needle in r.stderr, r.stderr
    r = det_inproc("fuse-results", *paths, "--ann", gt_p, "--weights", "1", "2")
    assert r.returncode == 2 and "--weights" in r.stderr
