"""coco_evaluate against pycocotools' own COCOeval on the same files, and its input checks."""
from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pytest
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from det.core.errors import DetError
from det.core.evaluation.coco import coco_evaluate, load_coco_gt, load_coco_results


def make_case(seed: int, n_img: int = 12, n_cls: int = 3, masks: bool = False, max_dets: int = 30):
    rng = np.random.default_rng(seed)
    images, anns, dets = [], [], []
    for img_id in range(1, n_img + 1):
        w, h = 320, 240
        images.append({"id": img_id, "width": w, "height": h, "file_name": f"{img_id}.jpg"})
        for _ in range(rng.integers(0, 6)):
            bw, bh = rng.uniform(4, 150), rng.uniform(4, 120)
            x, y = rng.uniform(0, w - bw), rng.uniform(0, h - bh)
            ann = {"id": len(anns) + 1, "image_id": img_id, "category_id": int(rng.integers(1, n_cls + 1)),
                   "bbox": [x, y, bw, bh], "area": bw * bh, "iscrowd": 0}
            if masks:
                m = np.zeros((h, w), np.uint8, order="F")
                m[int(y):int(y + bh), int(x):int(x + bw)] = 1
                rle = mask_utils.encode(m)
                rle["counts"] = rle["counts"].decode()
                ann["segmentation"] = rle
                ann["area"] = float(mask_utils.area(rle))
            anns.append(ann)
            if rng.random() < 0.8:  # a jittered true positive
                jx, jy = rng.normal(0, 6, 2)
                dets.append({"image_id": img_id, "category_id": ann["category_id"] if rng.random() < 0.85 else 1,
                             "bbox": [x + jx, y + jy, bw * rng.uniform(0.8, 1.2), bh * rng.uniform(0.8, 1.2)],
                             "score": float(rng.random())})
        for _ in range(rng.integers(0, max_dets)):  # false positives
            bw, bh = rng.uniform(4, 150), rng.uniform(4, 120)
            dets.append({"image_id": img_id, "category_id": int(rng.integers(1, n_cls + 1)),
                         "bbox": [rng.uniform(0, w - bw), rng.uniform(0, h - bh), bw, bh], "score": float(rng.random())})
    if masks:
        for d in dets:
            x, y, bw, bh = d["bbox"]
            m = np.zeros((240, 320), np.uint8, order="F")
            m[max(int(y), 0):max(int(y + bh), 0), max(int(x), 0):max(int(x + bw), 0)] = 1
            rle = mask_utils.encode(m)
            rle["counts"] = rle["counts"].decode()
            d["segmentation"] = rle
    cats = [{"id": i, "name": f"class_{i}"} for i in range(1, n_cls + 1)]
    return {"images": images, "annotations": anns, "categories": cats}, dets


def reference(gt_path, dets, iou_type, max_dets=(100, 300, 1000), use_cats=True):
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(gt_path))
        dt = gt.loadRes([dict(d) for d in dets])
        ev = COCOeval(gt, dt, iou_type)
        ev.params.maxDets = list(max_dets)
        ev.params.useCats = int(use_cats)
        ev.evaluate(), ev.accumulate(), ev.summarize()
    return ev


def write_json(path, obj):
    path.write_text(json.dumps(obj))
    return path


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_bbox_equals_pycocotools(tmp_path, seed):
    gt, dets = make_case(seed)
    gt_path = write_json(tmp_path / "gt.json", gt)
    res_path = write_json(tmp_path / "res.json", dets)
    ours = coco_evaluate(gt_path, res_path, "bbox", classwise=True)
    ev = reference(gt_path, dets, "bbox")
    keys = ["mAP", "mAP_50", "mAP_75", "mAP_s", "mAP_m", "mAP_l"]
    assert [ours[f"coco/bbox_{k}"] for k in keys] == pytest.approx(list(ev.stats[:6]), abs=1e-12)
    assert 0.01 < ours["coco/bbox_mAP"] < 0.95  # a non-trivial case
    # per-class AP: mean of valid precisions of that class over IoUs/recalls, area all, last maxDets
    for idx, cat in enumerate(gt["categories"]):
        p = ev.eval["precision"][:, :, idx, 0, -1]
        assert ours["classwise"][cat["name"]] == pytest.approx(float(p[p > -1].mean()))
    # the same result from a dict and an in-memory list
    assert coco_evaluate(gt, dets)["coco/bbox_mAP"] == ours["coco/bbox_mAP"]


def test_default_pycocotools_params_when_few_detections(tmp_path):
    gt, dets = make_case(5, max_dets=20)
    gt_path = write_json(tmp_path / "gt.json", gt)
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(str(gt_path))
        ev = COCOeval(coco, coco.loadRes([dict(d) for d in dets]), "bbox")  # maxDets 1, 10, 100
        ev.evaluate(), ev.accumulate(), ev.summarize()
    ours = coco_evaluate(gt_path, dets)
    assert ours["coco/bbox_mAP"] == pytest.approx(ev.stats[0], abs=1e-12)
    assert ours["coco/bbox_mAP_50"] == pytest.approx(ev.stats[1], abs=1e-12)


def test_segm_and_proposal_equal_pycocotools(tmp_path):
    gt, dets = make_case(3, n_img=6, masks=True, max_dets=8)
    gt_path = write_json(tmp_path / "gt.json", gt)
    ours = coco_evaluate(gt_path, dets, "segm")
    segm_dets = [{k: v for k, v in d.items() if k != "bbox"} for d in dets]
    ev = reference(gt_path, segm_dets, "segm")
    assert [ours[f"coco/segm_{k}"] for k in ["mAP", "mAP_50", "mAP_75", "mAP_s", "mAP_m", "mAP_l"]] == \
        pytest.approx(list(ev.stats[:6]), abs=1e-12)
    props = coco_evaluate(gt_path, dets, "proposal")
    ev = reference(gt_path, dets, "bbox", use_cats=False)
    names = ["AR@100", "AR@300", "AR@1000", "AR_s@1000", "AR_m@1000", "AR_l@1000"]
    assert [props[f"coco/{n}"] for n in names] == pytest.approx(list(ev.stats[6:12]), abs=1e-12)


def test_empty_results_and_img_ids(tmp_path):
    gt, dets = make_case(4)
    out = coco_evaluate(gt, [])
    assert out["coco/bbox_mAP"] == 0.0
    subset = [1, 2, 3]
    ours = coco_evaluate(gt, dets, img_ids=subset)
    with contextlib.redirect_stdout(io.StringIO()):
        coco = load_coco_gt(gt)
        ev = COCOeval(coco, coco.loadRes([dict(d) for d in dets]), "bbox")
        ev.params.maxDets = [100, 300, 1000]
        ev.params.imgIds = subset
        ev.evaluate(), ev.accumulate(), ev.summarize()
    assert ours["coco/bbox_mAP"] == pytest.approx(ev.stats[0], abs=1e-12)


def test_nothing_printed_on_stdout(tmp_path, capsys):
    gt, dets = make_case(6)
    coco_evaluate(gt, dets)
    assert capsys.readouterr().out == ""


def test_input_errors_name_the_file(tmp_path):
    gt, dets = make_case(7)
    gt_path = write_json(tmp_path / "gt.json", gt)
    with pytest.raises(DetError, match="missing.json"):
        coco_evaluate(tmp_path / "missing.json", dets)
    with pytest.raises(DetError, match="nores.json"):
        coco_evaluate(gt_path, tmp_path / "nores.json")
    bad_gt = write_json(tmp_path / "bad_gt.json", {"annotations": []})
    with pytest.raises(DetError, match="bad_gt.json.*images"):
        load_coco_gt(bad_gt)
    coco = load_coco_gt(gt_path)
    wrong = write_json(tmp_path / "wrong.json", {"image_id": 1})
    with pytest.raises(DetError, match="wrong.json.*list"):
        load_coco_results(wrong, coco)
    nobox = write_json(tmp_path / "nobox.json", [{"image_id": 1, "category_id": 1, "score": 0.5}])
    with pytest.raises(DetError, match="nobox.json.*'bbox'"):
        load_coco_results(nobox, coco)
    foreign = write_json(tmp_path / "foreign.json", [{**dets[0], "image_id": 9999}])
    with pytest.raises(DetError, match="foreign.json.*image ids not in the annotations.*9999"):
        load_coco_results(foreign, coco)
    badcat = write_json(tmp_path / "badcat.json", [{**dets[0], "category_id": 77}])
    with pytest.raises(DetError, match="badcat.json.*category ids"):
        load_coco_results(badcat, coco)
    with pytest.raises(DetError, match="gt.json: .* no 'segmentation'"):
        coco_evaluate(gt_path, [], "segm")
    broken = tmp_path / "broken.json"
    broken.write_text("[{")
    with pytest.raises(DetError, match="broken.json:1"):
        load_coco_results(broken, coco)
