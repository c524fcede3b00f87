"""COCO panoptic quality (PQ, SQ, RQ) as panopticapi's `pq_compute` defines it.

Per image and category: a ground-truth and a predicted segment of the same category match when
IoU > 0.5, the union leaving out the prediction's pixels on VOID (id 0); crowd ground truth
never matches and is never a false negative; an unmatched prediction is not a false positive
when more than half of it lies on VOID plus the crowd region of its category. PQ = sum(IoU of
matches) / (TP + FP/2 + FN/2), SQ = mean IoU of matches, RQ = TP / (TP + FP/2 + FN/2);
averages run over the categories with any TP, FP or FN. Values lie in 0..1.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from det.core.errors import DataError
from det.core.structures.panoptic import VOID

OFFSET = 256**3  # pair encoding gt * OFFSET + pred, as panopticapi


def new_stats() -> dict[int, list[float]]:
    """category_id -> [iou_sum, tp, fp, fn]."""
    return {}


def _add(stats: dict[int, list[float]], cat: int, iou: float = 0.0, tp: int = 0, fp: int = 0, fn: int = 0) -> None:
    s = stats.setdefault(int(cat), [0.0, 0, 0, 0])
    s[0] += iou
    s[1] += tp
    s[2] += fp
    s[3] += fn


def pq_image(gt_ids: np.ndarray, gt_segments: Mapping[int, Mapping], pred_ids: np.ndarray,
             pred_segments: Mapping[int, Mapping], stats: dict[int, list[float]] | None = None,
             where: str = "") -> dict[int, list[float]]:
    """Accumulate one image's TP/FP/FN/IoU into `stats`. Segments map id -> {category_id,
    iscrowd}; ids of the maps must all be listed (VOID excepted) and every listed id present."""
    stats = new_stats() if stats is None else stats
    if gt_ids.shape != pred_ids.shape:
        raise DataError(f"{where}prediction is {pred_ids.shape[1]}x{pred_ids.shape[0]}, "
                        f"ground truth {gt_ids.shape[1]}x{gt_ids.shape[0]}")
    gt_area = _areas(gt_ids, gt_segments, f"{where}ground truth")
    pred_area = _areas(pred_ids, pred_segments, f"{where}prediction")
    pairs, counts = np.unique(gt_ids.astype(np.int64) * OFFSET + pred_ids.astype(np.int64), return_counts=True)
    inter = {(int(p // OFFSET), int(p % OFFSET)): int(c) for p, c in zip(pairs, counts)}
    gt_matched, pred_matched = set(), set()
    for (g, p), n in inter.items():
        if g not in gt_segments or p not in pred_segments or gt_segments[g].get("iscrowd", 0):
            continue
        cat = int(gt_segments[g]["category_id"])
        if cat != int(pred_segments[p]["category_id"]):
            continue
        iou = n / (pred_area[p] + gt_area[g] - n - inter.get((VOID, p), 0))
        if iou > 0.5:
            _add(stats, cat, iou=iou, tp=1)
            gt_matched.add(g)
            pred_matched.add(p)
    crowd: dict[int, int] = {}
    for g, seg in gt_segments.items():
        if g in gt_matched:
            continue
        if seg.get("iscrowd", 0):
            crowd[int(seg["category_id"])] = g
        else:
            _add(stats, seg["category_id"], fn=1)
    for p, seg in pred_segments.items():
        if p in pred_matched:
            continue
        cat = int(seg["category_id"])
        ignored = inter.get((VOID, p), 0) + (inter.get((crowd[cat], p), 0) if cat in crowd else 0)
        if ignored / pred_area[p] > 0.5:
            continue
        _add(stats, cat, fp=1)
    return stats


def _areas(ids: np.ndarray, segments: Mapping[int, Mapping], what: str) -> dict[int, int]:
    labels, counts = np.unique(ids, return_counts=True)
    areas = {int(lab): int(c) for lab, c in zip(labels, counts) if lab != VOID}
    stray = sorted(set(areas) - set(segments))
    if stray:
        raise DataError(f"{what}: segment id {stray[0]} is in the PNG but not in segments_info")
    missing = sorted(set(segments) - set(areas))
    if missing:
        raise DataError(f"{what}: segment id {missing[0]} of segments_info is not in the PNG")
    return areas


def _group(stats: Mapping[int, list[float]], categories: list[dict], isthing: bool | None) -> tuple[dict, dict]:
    per_class, sums, n = {}, [0.0, 0.0, 0.0], 0
    for cat in categories:
        if isthing is not None and bool(cat["isthing"]) != isthing:
            continue
        iou, tp, fp, fn = stats.get(int(cat["id"]), [0.0, 0, 0, 0])
        if tp + fp + fn == 0:
            continue
        denom = tp + 0.5 * fp + 0.5 * fn
        row = {"PQ": iou / denom, "SQ": iou / tp if tp else 0.0, "RQ": tp / denom,
               "TP": int(tp), "FP": int(fp), "FN": int(fn)}
        per_class[cat["name"]] = row
        sums = [sums[0] + row["PQ"], sums[1] + row["SQ"], sums[2] + row["RQ"]]
        n += 1
    avg = {k: (v / n if n else math.nan) for k, v in zip(("PQ", "SQ", "RQ"), sums)}
    return {**avg, "n": n}, per_class


def pq_summary(stats: Mapping[int, list[float]], categories: list[dict], classwise: bool = True) -> dict[str, Any]:
    """{PQ, SQ, RQ, PQ_th, SQ_th, RQ_th, PQ_st, SQ_st, RQ_st, num_things, num_stuff[, classwise]}
    (classwise: {name: {PQ, SQ, RQ, TP, FP, FN}} of categories with any TP, FP or FN; a group
    without such a category is NaN)."""
    out: dict[str, Any] = {}
    for suffix, isthing in (("", None), ("_th", True), ("_st", False)):
        avg, per_class = _group(stats, categories, isthing)
        out.update({f"{k}{suffix}": avg[k] for k in ("PQ", "SQ", "RQ")})
        if isthing is None:
            total = per_class
        else:
            out["num_things" if isthing else "num_stuff"] = avg["n"]
    if classwise:
        out["classwise"] = total
    return out


# -- files ------------------------------------------------------------------------------------

def _segments(ann: Mapping, categories: Mapping[int, dict], where: str) -> dict[int, dict]:
    segs: dict[int, dict] = {}
    for j, seg in enumerate(ann.get("segments_info") or []):
        try:
            sid, cid = int(seg["id"]), int(seg["category_id"])
        except (KeyError, TypeError, ValueError):
            raise DataError(f"{where}.segments_info[{j}]: needs id and category_id") from None
        if cid not in categories:
            raise DataError(f"{where}.segments_info[{j}]: unknown category_id {cid}")
        if sid in segs:
            raise DataError(f"{where}.segments_info[{j}]: duplicate segment id {sid}")
        segs[sid] = {"category_id": cid, "iscrowd": int(bool(seg.get("iscrowd", 0)))}
    return segs


def _annotations(doc: Any, path: Path) -> dict[int, dict]:
    if not isinstance(doc, dict) or not isinstance(doc.get("annotations"), list):
        raise DataError(f"{path}: expected a COCO panoptic JSON object with an 'annotations' list")
    out = {}
    for i, ann in enumerate(doc["annotations"]):
        try:
            out[int(ann["image_id"])] = dict(ann, _where=f"{path}: annotations[{i}]", file_name=str(ann["file_name"]))
        except (KeyError, TypeError, ValueError):
            raise DataError(f"{path}: annotations[{i}] needs image_id and file_name") from None
    return out


def categories_of(doc: Any, path: Path) -> list[dict]:
    """The `categories` of a panoptic JSON (id, name, isthing), checked."""
    try:
        return [{"id": int(c["id"]), "name": str(c["name"]), "isthing": int(bool(c["isthing"]))} for c in doc["categories"]]
    except (KeyError, TypeError, ValueError):
        raise DataError(f"{path}: 'categories' must list id, name and isthing") from None


def evaluate_panoptic_files(gt_json: str | Path, pred_json: str | Path, gt_dir: str | Path | None = None,
                            pred_dir: str | Path | None = None, classwise: bool = True,
                            progress: bool = True) -> dict[str, Any]:
    """PQ of prediction PNGs + JSON against ground-truth PNGs + JSON. PNG folders default to
    each JSON path without `.json` (COCO's layout). Every ground-truth image needs a prediction."""
    from det.core.data.panoptic_io import read_segment_ids
    from det.core.fileio import read_json
    from det.core.log import track

    gt_json, pred_json = Path(gt_json), Path(pred_json)
    gt_doc, pred_doc = read_json(gt_json, "panoptic ground truth"), read_json(pred_json, "panoptic predictions")
    categories = categories_of(gt_doc, gt_json)
    by_id = {c["id"]: c for c in categories}
    gt_dir = Path(gt_dir) if gt_dir is not None else gt_json.with_suffix("")
    pred_dir = Path(pred_dir) if pred_dir is not None else pred_json.with_suffix("")
    gts, preds = _annotations(gt_doc, gt_json), _annotations(pred_doc, pred_json)
    stats = new_stats()
    items: Iterable = gts.items()
    if progress:
        items = track(list(items), "panoptic quality")
    for img_id, gt in items:
        if img_id not in preds:
            raise DataError(f"{pred_json}: no prediction for image_id {img_id} ({gt['file_name']})")
        pred = preds[img_id]
        gt_ids = read_segment_ids(gt_dir / gt["file_name"], "ground-truth panoptic PNG")
        pred_ids = read_segment_ids(pred_dir / pred["file_name"], "predicted panoptic PNG")
        pq_image(gt_ids, _segments(gt, by_id, gt["_where"]), pred_ids, _segments(pred, by_id, pred["_where"]),
                 stats, where=f"{pred_dir / pred['file_name']}: ")
    res = pq_summary(stats, categories, classwise)
    res["num_images"] = len(gts)
    return res
