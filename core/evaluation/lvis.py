"""LVIS evaluation (federated COCO-style AP with rare/common/frequent groups) on det's compiled
COCO evaluator, equal to the `lvis` package's LVISEval.

LVIS differs from COCO in what is evaluated, not in how matches are scored:
- per image, detections of a class are kept only when the class is in the image's ground truth
  or in its `neg_category_ids`; unmatched detections of a class in `not_exhaustive_category_ids`
  are ignored;
- no crowd regions; a ground truth is ignored only by an `ignore` flag or the area range;
  annotations and detections of zero area are left out (as LVIS' `get_ann_ids` does);
- every detection counts (at most 300 per image: more is an error, not a silent cut);
- AP, AP50, AP75, APs/m/l, APr/APc/APf (classes grouped by their `frequency`), AR@300.
Keys: MMDetection's LVISMetric, `lvis/bbox_AP`, ... (not rounded).
"""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from det.core.errors import DetError
from det.core.evaluation.coco import check_results, load_coco_gt, quiet
from det.core.fileio import read_json

MAX_DETS = 300
AP_KEYS = ("AP", "AP50", "AP75", "APs", "APm", "APl", "APr", "APc", "APf")
FREQS = ("r", "c", "f")


def validate_lvis(coco, name: str) -> None:
    """LVIS needs per-image negative / not-exhaustive class lists and per-class frequency."""
    for img in coco.dataset["images"]:
        for key in ("neg_category_ids", "not_exhaustive_category_ids"):
            if not isinstance(img.get(key), list):
                raise DetError(f"{name}: image {img['id']} has no '{key}' list (not an LVIS annotation file?)")
    for cat in coco.dataset["categories"]:
        if cat.get("frequency") not in FREQS:
            raise DetError(f"{name}: category {cat['id']} has no 'frequency' of r, c or f")


def check_per_image(results: list[dict], name: str, max_dets: int = MAX_DETS) -> None:
    """More than `max_dets` detections on one image is an error naming the image and the item."""
    counts: dict[Any, int] = defaultdict(int)
    for i, det in enumerate(results):
        counts[det["image_id"]] += 1
        if counts[det["image_id"]] > max_dets:
            raise DetError(f"{name}: item {i}: image {det['image_id']} has more than {max_dets} detections "
                           f"(LVIS evaluates at most {max_dets} per image; keep the top-scoring ones)")


def _params(coco, iou_type: str):
    from pycocotools.cocoeval import Params

    p = Params(iouType=iou_type)
    p.imgIds, p.catIds = sorted(coco.getImgIds()), sorted(coco.getCatIds())
    p.maxDets = [1 << 40]  # no cut per class and image
    return p


def _select(coco, results: list[dict], iou_type: str, p) -> tuple[dict, dict]:
    from det.core.evaluation.coco_fast import _rles, prepare

    gt, dt = prepare(coco, results, iou_type, p)
    if iou_type == "segm":
        from pycocotools import mask as mask_utils

        dt["area"] = np.array([float(mask_utils.area(r)) for r in _rles(coco, dt["dets"], dt, "rle")])
    keep_g = (gt["area"] > 0) & (gt["area"] < np.inf)
    gt = _subset(gt, keep_g, "anns")
    pos = defaultdict(set)
    for i, c in zip(gt["img"].tolist(), gt["cat"].tolist()):
        pos[i].add(c)
    cat_index = {c: k for k, c in enumerate(p.catIds)}
    imgs = [coco.imgs[i] for i in p.imgIds]
    neg = [{cat_index[c] for c in img["neg_category_ids"] if c in cat_index} for img in imgs]
    nel = [{cat_index[c] for c in img["not_exhaustive_category_ids"] if c in cat_index} for img in imgs]
    di, dc = dt["img"].tolist(), dt["cat"].tolist()
    keep_d = (dt["area"] > 0) & (dt["area"] < np.inf) & np.array(
        [c in pos[i] or c in neg[i] for i, c in zip(di, dc)], dtype=bool).reshape(-1)
    dt["lenient"] = np.array([c in nel[i] for i, c in zip(di, dc)], dtype=np.int64).reshape(-1)
    return gt, _subset(dt, keep_d, "dets")


def _subset(arrays: dict, keep: np.ndarray, list_key: str) -> dict:
    out = {k: (v[keep] if isinstance(v, np.ndarray) else v) for k, v in arrays.items()}
    flags = keep.tolist()
    out[list_key] = [x for x, f in zip(arrays[list_key], flags) if f]
    if "rle" in arrays:
        out["rle"] = [x for x, f in zip(arrays["rle"], flags) if f]
    return out


def _accumulate(coco, gt: dict, dt: dict, iou_type: str, p) -> tuple[np.ndarray, np.ndarray]:
    from det.core.evaluation.coco_fast import _mask_ious
    from det.ops.coco_eval import coco_accumulate

    ious = offsets = None
    if iou_type == "segm":
        area = dt["area"]
        ious, offsets, _ = _mask_ious(coco, {**gt, "crowd": np.zeros_like(gt["crowd"])}, dt, len(p.imgIds))
        dt["area"] = area
    ignore = np.array([int(bool(a.get("ignore", 0))) for a in gt["anns"]], dtype=np.int64).reshape(-1)
    precision, recall, _ = coco_accumulate(
        gt["img"], gt["cat"], gt["box"], gt["area"], np.zeros_like(gt["crowd"]), gt["id"], dt["img"], dt["cat"],
        dt["box"], dt["area"], dt["score"], len(p.imgIds), len(p.catIds), p.iouThrs, p.recThrs, p.areaRng,
        p.maxDets, ious, offsets, gt_ignore=ignore, dt_lenient=dt["lenient"])
    return precision[..., 0], recall[..., 0]


def _mean(s: np.ndarray) -> float:
    valid = s[s > -1]
    return float(np.mean(valid)) if valid.size else -1.0


def summarize(precision: np.ndarray, recall: np.ndarray, iou_thrs: np.ndarray, freq_groups: list[list[int]],
              max_dets: int = MAX_DETS) -> dict[str, float]:
    """LVISEval.summarize: AP family over precision (T, R, K, A), AR family over recall (T, K, A)."""
    t50, t75 = np.where(iou_thrs == 0.5)[0], np.where(iou_thrs == 0.75)[0]
    out = {"AP": _mean(precision[:, :, :, 0]), "AP50": _mean(precision[t50][:, :, :, 0]),
           "AP75": _mean(precision[t75][:, :, :, 0])}
    for a, s in ((1, "s"), (2, "m"), (3, "l")):
        out[f"AP{s}"] = _mean(precision[:, :, :, a])
    for g, f in enumerate(FREQS):
        out[f"AP{f}"] = _mean(precision[:, :, freq_groups[g], 0])
    out[f"AR@{max_dets}"] = _mean(recall[:, :, 0])
    for a, s in ((1, "s"), (2, "m"), (3, "l")):
        out[f"AR{s}@{max_dets}"] = _mean(recall[:, :, a])
    return out


def lvis_evaluate(gt: Any, results: list[dict] | str | Path, iou_type: str = "bbox", classwise: bool = False) -> dict:
    """LVIS metrics of COCO-format results against an LVIS annotation file (path or dict).

    Returns {"lvis/bbox_AP": ..., "lvis/bbox_APr": ..., "lvis/bbox_AR@300": ...} (and
    "classwise": {class name: AP} with `classwise`).
    """
    if iou_type not in ("bbox", "segm"):
        raise DetError(f"unknown LVIS metric '{iou_type}'; valid: bbox, segm")
    name = str(gt) if isinstance(gt, (str, Path)) else "annotations"
    coco = load_coco_gt(gt)
    validate_lvis(coco, name)
    res_name = str(results) if isinstance(results, (str, Path)) else "results"
    if isinstance(results, (str, Path)):
        results = read_json(results, "results file")
    results = check_results(results, coco, res_name, iou_type)
    check_per_image(results, res_name)
    p = _params(coco, iou_type)
    with quiet():
        gt_arr, dt_arr = _select(coco, results, iou_type, p)
        precision, recall = _accumulate(coco, gt_arr, dt_arr, iou_type, p)
    freq = [[k for k, c in enumerate(p.catIds) if coco.cats[c]["frequency"] == f] for f in FREQS]
    stats = summarize(precision, recall, np.asarray(p.iouThrs), freq)
    out: dict[str, Any] = {f"lvis/{iou_type}_{k}": v for k, v in stats.items()}
    if classwise:
        out["classwise"] = {str(coco.cats[c].get("name", c)): (_mean(precision[:, :, k, 0]) if
                            (precision[:, :, k, 0] > -1).any() else float("nan")) for k, c in enumerate(p.catIds)}
    return out
