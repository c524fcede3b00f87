"""`det analyze-logs` end to end: three formats, MMDetection-style multi-value options, exit codes."""
from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "core" / "analysis"))
from logfixtures import write_all  # noqa: E402


def test_plot_train_time_summary(det_inproc, tmp_path):
    p = write_all(tmp_path)
    out = tmp_path / "curves.png"
    r = det_inproc("analyze-logs", "plot", p["det"], p["mmdet3"], p["mmdet2"], "--keys", "loss", "bbox_mAP",
            "--legend", "a", "b", "c", "--x", "epoch", "--out", out, "--json")
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert res["keys"] == ["loss", "bbox_mAP"] and set(res["points"]) == {"a", "b", "c"}
    assert out.stat().st_size > 5000
    r = det_inproc("analyze-logs", "plot", p["det"], "--keys", "loss", "--out", out)
    assert r.returncode == 2 and "already exists" in r.stderr
    r = det_inproc("analyze-logs", "train-time", p["mmdet2"], p["det"], "--json")
    assert r.returncode == 0, r.stderr
    a, b = json.loads(r.stdout)
    assert a["average_iter_time"] == b["average_iter_time"] and a["slowest_epoch"] == 3
    r = det_inproc("analyze-logs", "train-time", p["mmdet3"])
    assert "slowest epoch 3" in r.stdout and "average iter time" in r.stdout
    r = det_inproc("analyze-logs", "summary", p["mmdet3"], "--json")
    assert json.loads(r.stdout)[0]["keys"]["coco/bbox_mAP"]["best"] - 0.3 < 1e-12


def test_errors_exit_2_naming_the_file(det_inproc, tmp_path):
    p = write_all(tmp_path)
    r = det_inproc("analyze-logs", "summary", tmp_path / "missing.json")
    assert r.returncode == 2 and "missing.json" in r.stderr
    r = det_inproc("analyze-logs", "plot", p["mmdet3"], "--keys", "segm_mAP", "--out", tmp_path / "x.png")
    assert r.returncode == 2 and "scalars.json: no key 'segm_mAP'" in r.stderr and "coco/bbox_mAP" in r.stderr
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]\n")
    r = det_inproc("analyze-logs", "train-time", bad)
    assert r.returncode == 2 and "bad.json:1" in r.stderr
