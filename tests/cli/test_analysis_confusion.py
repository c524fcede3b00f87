"""`det confusion-matrix` end to end: files written, CSV layout, exit codes."""
from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "core" / "analysis"))
from cocofixtures import random_coco, write  # noqa: E402


def test_confusion_matrix_files_and_errors(det_inproc, tmp_path):
    gt, dets = random_coco(3)
    gt_p, res_p = write(tmp_path / "gt.json", gt), write(tmp_path / "res.json", dets)
    r = det_inproc("confusion-matrix", res_p, "--ann", gt_p, "--out-dir", tmp_path / "cm", "--json")
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    rows = list(csv.reader(open(tmp_path / "cm" / "confusion_matrix.csv")))
    assert rows[0] == ["gt \\ pred", "c0", "c1", "c2", "c3", "background"]
    assert [[int(v) for v in row[1:]] for row in rows[1:]] == res["matrix"]
    assert rows[-1][0] == "background" and res["matrix"][-1][-1] == 0
    assert (tmp_path / "cm" / "confusion_matrix.png").stat().st_size > 10000
    r = det_inproc("confusion-matrix", res_p, "--ann", gt_p, "--out-dir", tmp_path / "cm", "--show")
    assert r.returncode == 2 and "already exists" in r.stderr
    r = det_inproc("confusion-matrix", res_p, "--ann", gt_p, "--out-dir", tmp_path / "cm", "--show", "--force")
    assert r.returncode == 0 and "precision" in r.stdout and "background" in r.stdout
    # user errors: exit 2 naming the file
    r = det_inproc("confusion-matrix", tmp_path / "none.json", "--ann", gt_p, "--out-dir", tmp_path / "x")
    assert r.returncode == 2 and "none.json" in r.stderr
    bad = write(tmp_path / "bad.json", {"results": dets})
    r = det_inproc("confusion-matrix", bad, "--ann", gt_p, "--out-dir", tmp_path / "x")
    assert r.returncode == 2 and "bad.json" in r.stderr and "list" in r.stderr
    foreign = write(tmp_path / "foreign.json", [{**dets[0], "image_id": 4242}])
    r = det_inproc("confusion-matrix", foreign, "--ann", gt_p, "--out-dir", tmp_path / "x")
    assert r.returncode == 2 and "foreign.json" in r.stderr and "4242" in r.stderr
    r = det_inproc("confusion-matrix", res_p, "--ann", write(tmp_path / "g2.json", [1]), "--out-dir", tmp_path / "x")
    assert r.returncode == 2 and "g2.json" in r.stderr
