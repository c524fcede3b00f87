"""The compiled COCO evaluator (det.ops.coco_accumulate through run_cocoeval) against pycocotools'
COCOeval on randomised cases: precision, recall and scores arrays must be bit-identical, and so
the 12 stats and every per-class AP."""
from __future__ import annotations

import contextlib
import copy
import io
import json

import numpy as np
import pytest
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from det.core.evaluation.coco import coco_evaluate, load_coco_gt, run_cocoeval

W, H = 96, 80


def _rle(m: np.ndarray) -> dict:
    rle = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
    rle["counts"] = rle["counts"].decode()
    return rle


def _blob(rng, x, y, bw, bh) -> np.ndarray:
    """A random, non-rectangular mask inside a box (an ellipse with a bite out of it)."""
    yy, xx = np.mgrid[0:H, 0:W]
    cx, cy = x + bw / 2, y + bh / 2
    m = ((xx - cx) / max(bw / 2, 1)) ** 2 + ((yy - cy) / max(bh / 2, 1)) ** 2 <= 1
    m &= ~((xx > cx + rng.uniform(-bw, bw) / 3) & (yy > cy))
    return m


def _box(rng, big: bool):
    bw, bh = (rng.uniform(20, 90), rng.uniform(20, 75)) if big else (rng.uniform(1, 40), rng.uniform(1, 40))
    return [float(rng.uniform(0, W - min(bw, W - 1))), float(rng.uniform(0, H - min(bh, H - 1))), float(bw), float(bh)]


def random_case(seed: int, masks: bool = False) -> tuple[dict, list[dict]]:
    """Crowds, small/medium/large areas, tied scores, duplicates, empty images, images without
    results, categories without ground truth, and an 'area' field unlike the box area."""
    rng = np.random.default_rng(seed)
    n_img, n_cls = int(rng.integers(3, 9)), int(rng.integers(1, 5))
    cat_ids = sorted(rng.choice(np.arange(1, 30), n_cls, replace=False).tolist())
    images, anns, dets = [], [], []
    for img_id in rng.choice(np.arange(1, 100), n_img, replace=False).tolist():
        images.append({"id": img_id, "width": W, "height": H})
        for _ in range(int(rng.integers(0, 7))):
            box = _box(rng, rng.random() < 0.6)
            ann = {"id": len(anns) + 1, "image_id": img_id, "category_id": int(rng.choice(cat_ids)), "bbox": box,
                   "iscrowd": int(rng.random() < 0.15), "area": box[2] * box[3] * float(rng.choice([1.0, 0.5, 3.0]))}
            if masks:
                m = _blob(rng, *box)
                ann["segmentation"], ann["area"] = _rle(m), float(m.sum())
            anns.append(ann)
        if rng.random() < 0.2:  # an image absent from the results
            continue
        for ann in [a for a in anns if a["image_id"] == img_id]:
            for _ in range(int(rng.integers(0, 3))):  # near-duplicates of a ground truth
                x, y, bw, bh = ann["bbox"]
                j = rng.normal(0, 3, 4)
                dets.append({"image_id": img_id, "category_id": ann["category_id"] if rng.random() < 0.8
                             else int(rng.choice(cat_ids)), "bbox": [x + j[0], y + j[1], abs(bw + j[2]), abs(bh + j[3])]})
        for _ in range(int(rng.integers(0, 25))):
            dets.append({"image_id": img_id, "category_id": int(rng.choice(cat_ids)), "bbox": _box(rng, rng.random() < 0.5)})
    for d in dets:  # coarse scores tie often; stable ordering decides
        d["score"] = float(rng.integers(0, 8)) / 8 if rng.random() < 0.5 else float(rng.random())
        if masks:
            d["segmentation"] = _rle(_blob(rng, *d["bbox"]))
    cats = [{"id": c, "name": f"c{c}"} for c in cat_ids]
    return {"images": images, "annotations": anns, "categories": cats}, dets


def pycocotools_eval(gt: dict, dets: list[dict], iou_type: str, max_dets, use_cats=True, img_ids=None) -> COCOeval:
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = copy.deepcopy(gt)
        coco.createIndex()
        res = [{k: v for k, v in d.items() if not (iou_type == "segm" and k == "bbox")} for d in copy.deepcopy(dets)]
        dt = coco.loadRes(res) if res else COCO()
        if not res:
            dt.dataset = {"images": gt["images"], "categories": gt["categories"], "annotations": []}
            dt.createIndex()
        ev = COCOeval(coco, dt, iou_type)
        ev.params.maxDets, ev.params.useCats = list(max_dets), int(use_cats)
        if img_ids is not None:
            ev.params.imgIds = img_ids
        ev.evaluate(), ev.accumulate(), ev.summarize()
    return ev


def assert_identical(ours: COCOeval, ref: COCOeval) -> None:
    for key in ("precision", "recall", "scores"):
        assert ours.eval[key].shape == ref.eval[key].shape, key
        assert np.array_equal(ours.eval[key], ref.eval[key]), key
    assert np.array_equal(ours.stats, ref.stats)


MAX_DETS = [(1, 10, 100), (100, 300, 1000), (1, 3, 5)]


@pytest.mark.parametrize("seed,iou_type", [(s, "bbox") for s in range(16)] + [(s, "segm") for s in range(100, 106)])
def test_identical_to_pycocotools(seed, iou_type):
    gt, dets = random_case(seed, masks=iou_type == "segm")
    max_dets = MAX_DETS[seed % 3]
    ref = pycocotools_eval(gt, dets, iou_type, max_dets)
    ours = run_cocoeval(load_coco_gt(copy.deepcopy(gt)), dets, iou_type, max_dets)
    assert_identical(ours, ref)


@pytest.mark.parametrize("seed", range(200, 203))
def test_class_agnostic_and_image_subset(seed):
    gt, dets = random_case(seed)
    ref = pycocotools_eval(gt, dets, "bbox", (100, 300, 1000), use_cats=False)
    ours = run_cocoeval(load_coco_gt(copy.deepcopy(gt)), dets, "proposal", (100, 300, 1000))
    assert_identical(ours, ref)
    subset = [img["id"] for img in gt["images"][::2]]
    ref = pycocotools_eval(gt, dets, "bbox", (1, 10, 100), img_ids=subset)
    ours = run_cocoeval(load_coco_gt(copy.deepcopy(gt)), dets, "bbox", (1, 10, 100), img_ids=subset)
    assert_identical(ours, ref)


def test_empty_results_and_empty_annotations():
    gt, dets = random_case(7)
    assert_identical(run_cocoeval(load_coco_gt(copy.deepcopy(gt)), [], "bbox", (1, 10, 100)),
                     pycocotools_eval(gt, [], "bbox", (1, 10, 100)))
    no_gt = {**gt, "annotations": []}
    assert_identical(run_cocoeval(load_coco_gt(copy.deepcopy(no_gt)), dets, "bbox", (1, 10, 100)),
                     pycocotools_eval(no_gt, dets, "bbox", (1, 10, 100)))


def test_ground_truth_id_zero_counts_as_unmatched_like_pycocotools():
    gt = {"images": [{"id": 1, "width": W, "height": H}], "categories": [{"id": 1, "name": "a"}],
          "annotations": [{"id": 0, "image_id": 1, "category_id": 1, "bbox": [10, 10, 20, 20], "area": 400.0,
                           "iscrowd": 0},
                          {"id": 5, "image_id": 1, "category_id": 1, "bbox": [50, 40, 30, 30], "area": 900.0,
                           "iscrowd": 0}]}
    dets = [{"image_id": 1, "category_id": 1, "bbox": [10, 10, 20, 20], "score": 0.9},
            {"image_id": 1, "category_id": 1, "bbox": [50, 40, 30, 30], "score": 0.8}]
    ref = pycocotools_eval(gt, dets, "bbox", (1, 10, 100))
    assert_identical(run_cocoeval(load_coco_gt(copy.deepcopy(gt)), dets, "bbox", (1, 10, 100)), ref)
    assert ref.stats[0] < 1.0  # the exact match on id 0 scored as a false positive


def test_classwise_and_stats_equal_across_backends():
    gt, dets = random_case(11)
    det = coco_evaluate(copy.deepcopy(gt), dets, classwise=True, backend="det")
    ref = coco_evaluate(copy.deepcopy(gt), dets, classwise=True, backend="pycocotools")
    assert json.dumps(det, sort_keys=True) == json.dumps(ref, sort_keys=True)  # NaN (no large gt) included
    assert det["coco/bbox_mAP"] > 0.05


def test_unknown_backend_is_a_config_error():
    from det.core.errors import ConfigError, DetError
    from det.core.evaluation.evaluator import CocoMetric

    with pytest.raises(ConfigError, match="evaluation.backend"):
        CocoMetric(backend="fast")
    gt, dets = random_case(1)
    with pytest.raises(DetError, match="backend"):
        coco_evaluate(gt, dets, backend="fast")
