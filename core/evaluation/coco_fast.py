"""The `det` COCO evaluation backend: pycocotools' COCOeval with evaluate/accumulate compiled.

`compiled_eval(coco, results, iou_type, params)` reads ground truths and detections into flat
arrays exactly as pycocotools' `_prepare` selects and orders them, runs `det.ops.coco_accumulate`
(bit-identical precision/recall/scores) and returns pycocotools' `eval` dict, so that
`COCOeval.summarize()` and per-class APs read it unchanged. Mask IoU stays pycocotools'
`maskUtils.iou`, computed once per image (all its detections x all its ground truths).
"""
from __future__ import annotations

import datetime
from typing import Any

import numpy as np


def _index(ids: list) -> dict:
    return {(v.item() if isinstance(v, np.generic) else v): i for i, v in enumerate(ids)}


def _gt_arrays(coco, p, cat_index: dict, img_index: dict) -> dict[str, Any]:
    anns = [a for a in coco.dataset["annotations"] if a["image_id"] in img_index and a["category_id"] in cat_index]
    n = len(anns)
    crowd = np.fromiter((int(a.get("iscrowd", 0)) for a in anns), np.int64, n)
    return {"anns": anns, "img": np.fromiter((img_index[a["image_id"]] for a in anns), np.int64, n),
            "cat": np.fromiter((cat_index[a["category_id"]] for a in anns), np.int64, n),
            "box": np.array([a["bbox"] for a in anns], dtype=np.float64).reshape(n, 4),
            "area": np.fromiter((a["area"] for a in anns), np.float64, n), "crowd": crowd,
            "id": np.fromiter((a["id"] for a in anns), np.int64, n)}


def _dt_arrays(results: list[dict], p, cat_index: dict, img_index: dict, iou_type: str) -> dict[str, Any]:
    n = len(results)
    img = np.fromiter((img_index.get(d["image_id"], -1) for d in results), np.int64, n)
    # Class-agnostic (proposal) results may leave the category out: they count as the first one.
    first = next(iter(cat_index), None) if not p.useCats else None
    cat = np.fromiter((cat_index.get(d.get("category_id", first), -1) for d in results), np.int64, n)
    keep = (img >= 0) & (cat >= 0)
    dets = [d for d, k in zip(results, keep.tolist()) if k] if not keep.all() else results
    out = {"dets": dets, "img": img[keep], "cat": cat[keep],
           "score": np.fromiter((d["score"] for d in dets), np.float64, len(dets))}
    if iou_type == "bbox":
        box = np.array([d["bbox"] for d in dets], dtype=np.float64).reshape(len(dets), 4)
        out["box"], out["area"] = box, box[:, 2] * box[:, 3]
    else:
        out["box"], out["area"] = np.zeros((len(dets), 4)), None
    return out


def _regroup(arrays: dict[str, Any], list_key: str) -> dict[str, Any]:
    """useCats=0: order each image's items by category (pycocotools' concatenation order), one class."""
    order = np.argsort(arrays["cat"], kind="stable")
    out = {k: (v[order] if isinstance(v, np.ndarray) else v) for k, v in arrays.items()}
    out[list_key] = [arrays[list_key][i] for i in order.tolist()]
    out["cat"] = np.zeros_like(arrays["cat"])
    return out


def _rles(coco, items: list[dict], cache: dict, key: str) -> list:
    if key not in cache:
        cache[key] = [coco.annToRLE(a) for a in items]
    return cache[key]


def _mask_ious(coco, gt: dict, dt: dict, num_images: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-image pycocotools mask IoU (detections x ground truths, input order) and detection areas."""
    from pycocotools import mask as mask_utils

    g_rle, d_rle = _rles(coco, gt["anns"], gt, "rle"), _rles(coco, dt["dets"], dt, "rle")
    d_area = np.array([float(mask_utils.area(r)) for r in d_rle], dtype=np.float64)
    g_by, d_by = [[] for _ in range(num_images)], [[] for _ in range(num_images)]
    for j, i in enumerate(gt["img"].tolist()):
        g_by[i].append(j)
    for j, i in enumerate(dt["img"].tolist()):
        d_by[i].append(j)
    blocks, offsets = [], np.zeros(num_images + 1, dtype=np.int64)
    for i in range(num_images):
        gi, di = g_by[i], d_by[i]
        if gi and di:
            crowd = [int(gt["crowd"][j]) for j in gi]
            blocks.append(np.asarray(mask_utils.iou([d_rle[j] for j in di], [g_rle[j] for j in gi], crowd),
                                     dtype=np.float64).reshape(-1))
        offsets[i + 1] = offsets[i] + len(gi) * len(di)
    ious = np.concatenate(blocks) if blocks else np.zeros(0)
    return ious, offsets, d_area


def normalise_params(p) -> None:
    """What COCOeval.evaluate does to its params before evaluating."""
    p.imgIds = list(np.unique(p.imgIds))
    if p.useCats:
        p.catIds = list(np.unique(p.catIds))
    p.maxDets = sorted(p.maxDets)


def prepare(coco, results: list[dict], iou_type: str, p) -> tuple[dict, dict]:
    """Ground-truth and detection arrays selected and ordered as pycocotools' `_prepare` does."""
    img_index, cat_index = _index(p.imgIds), _index(p.catIds)
    gt = _gt_arrays(coco, p, cat_index, img_index)
    dt = _dt_arrays(results, p, cat_index, img_index, iou_type)
    if not p.useCats:
        gt, dt = _regroup(gt, "anns"), _regroup(dt, "dets")
    return gt, dt


def accumulate(coco, gt: dict, dt: dict, iou_type: str, p, num_cats: int) -> tuple[np.ndarray, ...]:
    """(precision, recall, scores) of prepared arrays (segm: mask IoU with gt['crowd'] as is)."""
    from det.ops.coco_eval import coco_accumulate

    ious = offsets = None
    num_images = len(p.imgIds)
    if iou_type == "segm":
        ious, offsets, dt["area"] = _mask_ious(coco, gt, dt, num_images)
    return coco_accumulate(
        gt["img"], gt["cat"], gt["box"], gt["area"], gt["crowd"], gt["id"], dt["img"], dt["cat"], dt["box"],
        dt["area"], dt["score"], num_images, num_cats, p.iouThrs, p.recThrs, p.areaRng, p.maxDets, ious, offsets)


def compiled_eval(coco, results: list[dict], iou_type: str, p) -> dict[str, Any]:
    """pycocotools' `COCOeval.eval` for params `p` (normalised as COCOeval.evaluate does)."""
    normalise_params(p)
    gt, dt = prepare(coco, results, iou_type, p)
    precision, recall, scores = accumulate(coco, gt, dt, iou_type, p, len(p.catIds) if p.useCats else 1)
    return {"params": p, "counts": list(precision.shape), "precision": precision, "recall": recall, "scores": scores,
            "date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M:%S")}
