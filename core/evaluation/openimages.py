"""Open Images detection mAP as MMDetection's OpenImagesMetric computes it (oid_v6, IoU 0.5,
IoA 0.5 for group-of boxes, VOC 'area' AP per class, mean over classes with ground truth):

- hierarchy: every ground-truth box also counts for each ancestor class; every detection is
  copied to each ancestor class that the image's ground truth or image-level labels name;
- image-level filter: detections of a class that is neither in the image's ground truth (with
  ancestors) nor in its verified image-level labels (positive or negative) are dropped;
- group-of: a detection that is no TP of a plain box but covers a group-of box (intersection
  over the detection's area >= 0.5) is folded into that box: each group-of box is one TP (at
  the best score of its detections), or, left uncovered, one FP at score 0.
Numbers follow MMDetection's float32 overlaps and array types so that they are equal to it.
Keys: `openimages/AP50`, `openimages/mAP` (not rounded).
"""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from det.core.errors import DetError
from det.core.structures.boxes import box_overlaps


def gt_with_ancestors(instances: list[dict], relation: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(labels, float32 boxes, group-of flags): the instances, then a copy per ancestor class."""
    items = list(instances)
    for inst in instances:
        items += [{**inst, "bbox_label": int(c)} for c in np.flatnonzero(relation[inst["bbox_label"]])
                  if c != inst["bbox_label"]]
    return (np.array([i["bbox_label"] for i in items], np.int64),
            np.array([i["bbox"] for i in items], np.float32).reshape(-1, 4),
            np.array([i.get("is_group_of", False) for i in items], bool))


def expand_predictions(boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray, gt_labels: np.ndarray,
                       image_labels: np.ndarray | None, relation: np.ndarray) -> tuple[np.ndarray, ...]:
    """Copies of each detection for its allowed ancestor classes; classes not allowed dropped
    (in MMDetection's order: predicted classes ascending, then their related classes ascending)."""
    allowed = np.unique(np.append(gt_labels, image_labels) if image_labels is not None else gt_labels)
    out_b, out_s, out_l = boxes.copy(), scores.copy(), labels.copy()
    for pred in np.unique(labels):
        index = np.flatnonzero(labels == pred)
        for cls in np.flatnonzero(relation[pred]):
            if cls in allowed and cls != pred:
                out_s = np.concatenate([out_s, scores[index]])
                out_b = np.concatenate([out_b, boxes[index]])
                out_l = np.concatenate([out_l, np.full(index.shape, cls, np.int64)])
            elif cls not in allowed:
                keep = np.flatnonzero(out_l != cls)
                out_b, out_s, out_l = out_b[keep], out_s[keep], out_l[keep]
    return out_b, out_s, out_l


def _plain_matches(dets: np.ndarray, plain: np.ndarray, iou_thr: float) -> tuple[np.ndarray, np.ndarray]:
    tp, fp = np.zeros(len(dets), np.float32), np.ones(len(dets), np.float32)
    if not plain.shape[0]:
        return tp, fp
    ious = box_overlaps(dets, plain, dtype=np.float32)
    best, arg = ious.max(axis=1), ious.argmax(axis=1)
    covered = np.zeros(len(plain), bool)
    for i in np.argsort(-dets[:, -1]):
        if best[i] >= iou_thr and not covered[arg[i]]:
            covered[arg[i]], tp[i], fp[i] = True, 1, 0
    return tp, fp


def tpfp(dets: np.ndarray, gts: np.ndarray, group: np.ndarray, iou_thr: float, ioa_thr: float) -> tuple[np.ndarray, ...]:
    """(tp, fp, dets) of one image and class, group-of boxes folded (see the module doc)."""
    if not len(gts):
        return np.zeros(len(dets), np.float32), np.ones(len(dets), np.float32), dets
    tp, fp = _plain_matches(dets, gts[~group], iou_thr)
    groups = gts[group]
    if not len(groups):
        return tp, fp, dets
    ioas = box_overlaps(dets, groups, "iof", dtype=np.float32)
    best, arg = ioas.max(axis=1), ioas.argmax(axis=1)
    hit, tp_group = np.zeros(len(dets), bool), np.zeros(len(groups), np.float32)
    group_dets = np.zeros((len(groups), dets.shape[1]), float)
    for i in np.argsort(-dets[:, -1]):
        if not tp[i] and best[i] >= ioa_thr:
            tp_group[arg[i]], hit[i] = 1, True
            if group_dets[arg[i], -1] < dets[i, -1]:
                group_dets[arg[i]] = dets[i]
    return (np.concatenate((tp[~hit], tp_group)), np.concatenate((fp[~hit], (tp_group <= 0).astype(float))),
            np.concatenate((dets[~hit], group_dets)))


def voc_area_ap(recall: np.ndarray, precision: np.ndarray) -> np.float32:
    """Area under the precision envelope (MMDetection's average_precision, mode 'area')."""
    mrec = np.hstack((np.zeros(1, recall.dtype), recall, np.ones(1, recall.dtype)))
    mpre = np.hstack((np.zeros(1, recall.dtype), precision, np.zeros(1, recall.dtype)))
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    ind = np.flatnonzero(mrec[1:] != mrec[:-1])
    return np.float32(np.sum((mrec[ind + 1] - mrec[ind]) * mpre[ind + 1]))


def class_ap(parts: list[tuple[np.ndarray, ...]], num_gts: int) -> np.float32:
    """AP of one class from its per-image (tp, fp, dets)."""
    empty = (np.zeros(0, np.float32), np.zeros(0, np.float32), np.zeros((0, 5), np.float32))
    tp, fp, dets = (np.concatenate([p[k] for p in parts] or [empty[k]]) for k in range(3))
    order = np.argsort(-dets[:, -1])
    tp, fp = np.cumsum(tp[order]), np.cumsum(fp[order])
    eps = np.finfo(np.float32).eps
    recall = (tp[None] / np.maximum(np.array([[num_gts]]), eps))[0]  # float64, as MMDetection's (1, n) arrays
    precision = tp / np.maximum(tp + fp, eps)
    return voc_area_ap(recall, precision)


def openimages_map(images: list[dict], preds: list[tuple[np.ndarray, np.ndarray, np.ndarray]], relation: np.ndarray,
                   iou_thr: float = 0.5, ioa_thr: float = 0.5) -> tuple[float, dict[int, float]]:
    """(mAP, {class: AP}) over classes with ground truth; `preds` per image: float32 boxes
    (x1y1x2y2), float32 scores, int64 labels."""
    parts: dict[int, list] = defaultdict(list)
    num_gts: dict[int, int] = defaultdict(int)
    for image, (boxes, scores, labels) in zip(images, preds):
        gl, gb, gg = gt_with_ancestors(image["instances"], relation)
        pb, ps, pl = expand_predictions(boxes, scores, labels, gl, image.get("image_level_labels"), relation)
        for c in np.union1d(gl, pl).tolist():
            dets = np.hstack([pb[pl == c], ps[pl == c].reshape(-1, 1)])
            parts[c].append(tpfp(dets, gb[gl == c], gg[gl == c], iou_thr, ioa_thr))
            num_gts[c] += int((gl == c).sum())
    aps = {c: class_ap(parts[c], num_gts[c]) for c in sorted(parts) if num_gts[c] > 0}
    mean = np.array(list(aps.values())).mean().item() if aps else 0.0
    return mean, {c: float(v) for c, v in aps.items()}


def group_predictions(results: list[dict], images: list[dict], mids: list[str], name: str) -> list[tuple[np.ndarray, ...]]:
    """COCO results -> per image (boxes, scores, labels). image_id: the image's index or its
    ImageID; category_id: label + 1 (as det test writes) or the class MID."""
    from det.core.evaluation.coco import check_results, load_coco_gt

    if not isinstance(results, list):
        raise DetError(f"{name}: COCO results must be a JSON list of detections")
    by_name = {im["image_name"]: im["img_id"] for im in images}
    by_mid = {m: k + 1 for k, m in enumerate(mids)}
    results = [{**r, "image_id": by_name.get(r.get("image_id"), r.get("image_id")),
                "category_id": by_mid.get(r.get("category_id"), r.get("category_id"))} if isinstance(r, dict) else r
               for r in results]
    coco = load_coco_gt({"images": [{"id": im["img_id"]} for im in images],
                         "categories": [{"id": k + 1} for k in range(len(mids))]})
    check_results(results, coco, name, "bbox")
    per: dict[Any, list] = defaultdict(list)
    for r in results:
        x, y, w, h = (float(v) for v in r["bbox"])
        per[r["image_id"]].append((x, y, x + w, y + h, float(r["score"]), int(r["category_id"]) - 1))
    out = []
    for im in images:
        rows = np.array(per.get(im["img_id"], []), np.float64).reshape(-1, 6)
        out.append((rows[:, :4].astype(np.float32), rows[:, 4].astype(np.float32), rows[:, 5].astype(np.int64)))
    return out


def openimages_evaluate(images: list[dict], results: list[dict] | str | Path, mids: list[str], relation: np.ndarray,
                        iou_thr: float = 0.5, ioa_thr: float = 0.5, classwise: bool = False,
                        names: list[str] | None = None, name: str = "results") -> dict[str, Any]:
    """`openimages/AP50` (at `iou_thr`) and `openimages/mAP` of COCO-format results."""
    from det.core.fileio import read_json

    if isinstance(results, (str, Path)):
        name, results = str(results), read_json(results, "results file")
    mean, per_class = openimages_map(images, group_predictions(results, images, mids, name), relation, iou_thr, ioa_thr)
    out: dict[str, Any] = {f"openimages/AP{int(iou_thr * 100):02d}": mean, "openimages/mAP": mean}
    if classwise:
        out["classwise"] = {(names or mids)[c]: ap for c, ap in per_class.items()}
    return out
