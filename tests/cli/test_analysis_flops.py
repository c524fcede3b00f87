"""`det flops` end to end."""
from __future__ import annotations

import json


def test_flops_json_and_errors(det_inproc, tmp_path):
    r = det_inproc("flops", "presets/_base_/models/rtmdet_tiny_coco.yaml", "--shape", "320", "320", "--depth", "1", "--json")
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert res["input_shape"] == [1, 3, 320, 320] and res["macs"] * 2 == res["flops"]
    assert 1.9e9 < res["macs"] < 2.2e9  # a quarter of the 640 x 640 count
    r = det_inproc("flops", "presets/_base_/models/rtmdet_tiny_coco.yaml", "--shape", "320", "320")
    assert r.returncode == 0 and "MMDetection's \"Flops\" are MACs" in r.stdout and "not counted" in r.stdout
    r = det_inproc("flops", tmp_path / "nope.yaml")
    assert r.returncode == 2 and "nope.yaml" in r.stderr
