"""COCO error analysis against the same procedure run on pycocotools' COCOeval (relabelled
ground truth as crowd regions, one evaluation per class and confusion level), and the
`det analyze-results --errors` command."""
from __future__ import annotations

import contextlib
import copy
import io
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cocofixtures import random_coco, write  # noqa: E402

from det.core.analysis.coco_errors import ERROR_TYPES, error_precisions  # noqa: E402
from det.core.evaluation.coco import load_coco_gt  # noqa: E402


def _coco(data: dict) -> COCO:
    coco = COCO()
    coco.dataset = copy.deepcopy(data)
    coco.createIndex()
    return coco


def _eval(gt: COCO, dt: COCO, thrs) -> np.ndarray:
    ev = COCOeval(gt, dt, "bbox")
    ev.params.imgIds, ev.params.iouThrs, ev.params.maxDets = gt.getImgIds(), np.array(thrs), [100]
    ev.evaluate(), ev.accumulate()
    return ev.eval["precision"]


def reference(data: dict, dets: list[dict]) -> np.ndarray:
    """The published error-analysis procedure, every evaluation done by pycocotools."""
    with contextlib.redirect_stdout(io.StringIO()):
        gt = _coco(data)
        dt = gt.loadRes(copy.deepcopy(dets))
        ps = _eval(gt, dt, [0.75, 0.5, 0.1])
        ps = np.vstack([ps, np.zeros((4, *ps.shape[1:]))])
        for k, cat in enumerate(gt.getCatIds()):
            sub = _coco({**data, "annotations": []})
            sub = gt.loadRes([dict(d) for d in copy.deepcopy(dets) if d["category_id"] == cat]) \
                if any(d["category_id"] == cat for d in dets) else sub
            sup = gt.cats[cat].get("supercategory")
            for row, forgive in ((3, lambda c: gt.cats[c].get("supercategory") == sup), (4, lambda c: True)):
                g = copy.deepcopy(data)
                for ann in g["annotations"]:
                    if ann["category_id"] != cat and forgive(ann["category_id"]):
                        ann.update(iscrowd=1, ignore=1, category_id=cat)
                ps[row, :, k] = _eval(_coco(g), copy.deepcopy(sub), [0.1])[0, :, k]
    ps[ps == -1] = 0
    ps[5] = ps[4] > 0
    ps[6] = 1.0
    return ps


@pytest.mark.parametrize("seed", [0, 1])
def test_error_precisions_equal_pycocotools_procedure(seed):
    data, dets = random_coco(seed, n_img=10)
    for i, cat in enumerate(data["categories"]):
        cat["supercategory"] = "animal" if i < 2 else "vehicle"
    ps, info = error_precisions(load_coco_gt(copy.deepcopy(data)), dets)
    ref = reference(data, dets)
    assert ps.shape == ref.shape == (7, 101, 4, 4, 1)
    np.testing.assert_array_equal(ps, ref)
    overall = [ps[i, :, :, 0, 0].mean() for i in range(7)]
    assert overall == sorted(overall)  # each step forgives more
    assert overall[2] > overall[1] and overall[4] > overall[2]  # localisation and class confusions exist


@pytest.mark.slow
def test_analyze_results_errors_command(det_inproc, tmp_path):
    data, dets = random_coco(3, n_img=6, n_cls=2)
    gt_p, res_p = write(tmp_path / "gt.json", data), write(tmp_path / "res.json", dets)
    out = tmp_path / "err"
    r = det_inproc("analyze-results", res_p, "--ann", gt_p, "--errors", "--out-dir", out, "--json")
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    ps, _ = error_precisions(load_coco_gt(copy.deepcopy(data)), dets)
    assert res["overall"]["C75"] == pytest.approx(float(ps[0, :, :, 0, 0].mean()))
    assert list(res["overall"])[2:] == list(ERROR_TYPES)
    assert len(res["plots"]) == 4 * (1 + 2)  # overall + each class, 4 area ranges
    assert (out / "bbox" / "bbox-allclass-allarea.png").stat().st_size > 1000
    assert (out / "bbox" / "errors.csv").read_text().splitlines()[0] == "class,area," + ",".join(ERROR_TYPES)
    r = det_inproc("analyze-results", res_p, "--ann", gt_p, "--errors", "--out-dir", out)
    assert r.returncode == 2 and "already exists" in r.stderr
    r = det_inproc("analyze-results", res_p, "--ann", gt_p, "--errors", "--out-dir", tmp_path / "e2",
                   "--areas", "10", "--areas", "20")
    assert r.returncode == 2 and "--areas needs 3 values" in r.stderr
    r = det_inproc("analyze-results", res_p, "--ann", gt_p, "--out-dir", tmp_path / "e3")
    assert r.returncode == 2 and "--img-dir" in r.stderr
