"""LVIS metric: federated rules on hand-made cases with known values, the COCO special case
(equal to pycocotools when no LVIS rule applies), the >300-per-image error.
benchmarks/parity/lvis_metric.py compares with the `lvis` package itself."""
from __future__ import annotations

import contextlib
import copy
import io
import json

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from det.core.errors import DetError
from det.core.evaluation.lvis import lvis_evaluate


def lvis_gt(neg=(), not_exhaustive=()) -> dict:
    """One 100x100 image, three classes (rare, common, frequent), one large box of class 1."""
    return {"images": [{"id": 1, "width": 100, "height": 100, "neg_category_ids": list(neg),
                        "not_exhaustive_category_ids": list(not_exhaustive)}],
            "categories": [{"id": 1, "name": "a", "frequency": "r"}, {"id": 2, "name": "b", "frequency": "c"},
                           {"id": 3, "name": "c", "frequency": "f"}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 100, 100], "area": 10000.0}]}


HIT = {"image_id": 1, "category_id": 1, "bbox": [0, 0, 100, 100], "score": 0.5}


def test_perfect_detection_and_groups():
    res = lvis_evaluate(lvis_gt(), [HIT])
    assert res["lvis/bbox_AP"] == pytest.approx(1.0) and res["lvis/bbox_APr"] == pytest.approx(1.0) and res["lvis/bbox_APl"] == pytest.approx(1.0)
    assert res["lvis/bbox_APc"] == -1.0 and res["lvis/bbox_APf"] == -1.0  # no ground truth in those groups
    assert res["lvis/bbox_APs"] == -1.0 and res["lvis/bbox_AR@300"] == 1.0


def test_unlisted_class_detection_is_dropped_listed_negative_counts():
    fp = {"image_id": 1, "category_id": 1, "bbox": [0, 0, 30, 30], "score": 0.9}  # a better-scored miss
    assert lvis_evaluate(lvis_gt(), [HIT, fp])["lvis/bbox_AP"] == pytest.approx(0.5, abs=1e-12)
    other = {"image_id": 1, "category_id": 2, "bbox": [0, 0, 100, 100], "score": 0.9}
    # class 2 neither present nor negative: its detections are not evaluated at all
    assert lvis_evaluate(lvis_gt(), [HIT, other])["lvis/bbox_APc"] == -1.0
    # class 2 negative: a false positive, but with no ground truth its AP stays undefined (-1)
    assert lvis_evaluate(lvis_gt(neg=[2]), [HIT, other])["lvis/bbox_AP"] == pytest.approx(1.0)


def test_not_exhaustive_class_forgives_unmatched_detections():
    fp = {"image_id": 1, "category_id": 1, "bbox": [0, 0, 30, 30], "score": 0.9}
    assert lvis_evaluate(lvis_gt(not_exhaustive=[1]), [HIT, fp])["lvis/bbox_AP"] == pytest.approx(1.0)
    assert lvis_evaluate(lvis_gt(), [HIT, fp])["lvis/bbox_AP"] < 1.0


def test_equals_pycocotools_without_federated_rules():
    rng = np.random.default_rng(0)
    images = [{"id": i, "width": 200, "height": 200, "neg_category_ids": [1, 2, 3], "not_exhaustive_category_ids": []}
              for i in range(1, 6)]
    anns, dets = [], []
    for img in images:
        for _ in range(4):
            x, y, w, h = rng.uniform(0, 100, 4) + [0, 0, 5, 5]
            c = int(rng.integers(1, 4))
            anns.append({"id": len(anns) + 1, "image_id": img["id"], "category_id": c, "bbox": [x, y, w, h],
                         "area": w * h, "iscrowd": 0})
            dets.append({"image_id": img["id"], "category_id": c, "bbox": [x + 2, y + 1, w, h], "score": float(rng.random())})
            dets.append({"image_id": img["id"], "category_id": int(rng.integers(1, 4)),
                         "bbox": list(rng.uniform(0, 100, 4) + [0, 0, 5, 5]), "score": float(rng.random())})
    gt = {"images": images, "annotations": anns,
          "categories": [{"id": c, "name": str(c), "frequency": "rcf"[c - 1]} for c in (1, 2, 3)]}
    res = lvis_evaluate(copy.deepcopy(gt), dets)
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = copy.deepcopy(gt)
        coco.createIndex()
        ev = COCOeval(coco, coco.loadRes(copy.deepcopy(dets)), "bbox")
        ev.params.maxDets = [1, 10, 300]
        ev.evaluate(), ev.accumulate(), ev.summarize()
    names = ["AP", "AP50", "AP75", "APs", "APm", "APl"]
    p = ev.eval["precision"][..., -1]
    for name, value in zip(names, [p[:, :, :, 0], p[:1, :, :, 0], p[5:6, :, :, 0], p[..., 1], p[..., 2], p[..., 3]]):
        valid = value[value > -1]
        assert res[f"lvis/bbox_{name}"] == (float(valid.mean()) if valid.size else -1.0), name
    for k, f in enumerate("rcf"):
        valid = p[:, :, k, 0][p[:, :, k, 0] > -1]
        assert res[f"lvis/bbox_AP{f}"] == float(valid.mean())


def test_errors_name_the_file(tmp_path):
    res_path = tmp_path / "res.json"
    res_path.write_text(json.dumps([{**HIT, "score": i / 400} for i in range(301)]))
    gt_path = tmp_path / "lvis.json"
    gt_path.write_text(json.dumps(lvis_gt()))
    with pytest.raises(DetError, match=r"res.json: item 300: image 1 has more than 300 detections"):
        lvis_evaluate(gt_path, res_path)
    bad = lvis_gt()
    del bad["images"][0]["neg_category_ids"]
    with pytest.raises(DetError, match="neg_category_ids"):
        lvis_evaluate(bad, [HIT])
    with pytest.raises(DetError, match="res2.json.*image ids not in the annotations"):
        (tmp_path / "res2.json").write_text(json.dumps([{**HIT, "image_id": 7}]))
        lvis_evaluate(gt_path, tmp_path / "res2.json")


def test_det_eval_metric_lvis(det_inproc, tmp_path):
    gt_path, res_path = tmp_path / "lvis.json", tmp_path / "res.json"
    gt_path.write_text(json.dumps(lvis_gt()))
    res_path.write_text(json.dumps([HIT, {**HIT, "bbox": [0, 0, 30, 30], "score": 0.9}]))
    r = det_inproc("eval", res_path, "--ann", gt_path, "--metric", "lvis", "--json", "--classwise")
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert res["lvis/bbox_AP"] == pytest.approx(0.5) and res["lvis/bbox_APc"] == -1.0
    assert res["classwise"]["bbox"] == {"a": pytest.approx(0.5), "b": None, "c": None}
    res_path.write_text(json.dumps([{**HIT, "score": i / 400} for i in range(301)]))
    r = det_inproc("eval", res_path, "--ann", gt_path, "--metric", "lvis")
    assert r.returncode == 2 and "res.json: item 300" in r.stderr


def test_lvis_dataset_paths_from_coco_url_and_gt_for_the_metric(tmp_path):
    from det.core.data.datasets import DATASETS

    gt = lvis_gt()
    gt["images"][0]["coco_url"] = "http://images.cocodataset.org/val2017/000000000001.jpg"
    (tmp_path / "lvis.json").write_text(json.dumps(gt))
    ds = DATASETS["LVISV1Dataset"](ann_file="lvis.json", data_root=str(tmp_path), test_mode=True)
    assert ds.data_list[0]["img_path"] == str(tmp_path / "val2017" / "000000000001.jpg")
    coco_gt = ds.coco_gt()
    assert [c["frequency"] for c in coco_gt["categories"]] == ["r", "c", "f"]
    assert lvis_evaluate(coco_gt, [HIT])["lvis/bbox_AP"] == pytest.approx(1.0)
