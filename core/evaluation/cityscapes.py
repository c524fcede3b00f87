"""Cityscapes instance-level AP as cityscapesscripts' evalInstanceLevelSemanticLabeling computes it
(what MMDetection's CityscapesMetric runs), from the gtFine `*_instanceIds.png` images:

- classes: person, rider, car, truck, bus, train, motorcycle, bicycle (label ids 24-28, 31-33);
  instance pixels hold label id * 1000 + k, crowd regions their label id;
- a prediction (binary mask, label id, score) matches a ground truth of its class when the pixel
  IoU exceeds the threshold (0.5, 0.55, ..., 0.95); ground truths under 100 pixels and crowds are
  not counted; a second match of one ground truth is a FP at the lower score; an unmatched
  prediction is a FP unless more than the threshold of its pixels lie on void labels, crowds or
  small ground truths;
- AP per class and threshold from the precision/recall points at each distinct score (ties give
  one point), `cityscapes/mAP` the mean over classes and thresholds (NaN, a class without ground
  truth or predictions, left out), `cityscapes/AP@50` the same at 0.5.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from det.core.errors import DataError, DetError

CLASSES = {24: "person", 25: "rider", 26: "car", 27: "truck", 28: "bus", 31: "train", 32: "motorcycle", 33: "bicycle"}
VOID_IDS = (0, 1, 2, 3, 4, 5, 6, 9, 10, 14, 15, 16, 18, 29, 30)  # labels with ignoreInEval
OVERLAPS = np.arange(0.5, 1.0, 0.05)
MIN_REGION = 100


def read_instance_ids(path: str | Path) -> np.ndarray:
    import cv2

    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None or img.ndim != 2:
        raise DataError(f"{path}: cannot read as a single-channel Cityscapes instanceIds PNG")
    return img.astype(np.int64)


def gt_instances(ids: np.ndarray) -> dict[int, list[dict]]:
    """{label id: [{inst, pixels}]} of the evaluated classes (crowds have inst < 1000)."""
    values, counts = np.unique(ids, return_counts=True)
    out: dict[int, list[dict]] = {c: [] for c in CLASSES}
    for value, count in zip(values.tolist(), counts.tolist()):
        label = value if value < 1000 else value // 1000
        if label in out:
            out[label].append({"inst": value, "pixels": count})
    return out


def match_image(ids: np.ndarray, preds: list[tuple[int, float, np.ndarray]]) -> tuple[dict, dict]:
    """(gt per class with the predictions touching each, predictions per class with the ground
    truths they touch and their void pixels); predictions are (label id, score, bool mask)."""
    gts = gt_instances(ids)
    for items in gts.values():
        for g in items:
            g["preds"] = []
    void = np.isin(ids, VOID_IDS)
    out: dict[int, list[dict]] = {c: [] for c in CLASSES}
    for label, score, mask in preds:
        if label not in CLASSES:
            continue
        pixels = int(np.count_nonzero(mask))
        if not pixels:
            continue
        hits = dict(zip(*np.unique(ids[mask], return_counts=True)))
        pred = {"score": score, "pixels": pixels, "void": int(np.count_nonzero(void & mask)), "gts": []}
        for g in gts[label]:
            inter = int(hits.get(g["inst"], 0))
            if inter > 0:
                pred["gts"].append({**g, "inter": inter})
                g["preds"].append({"score": score, "pixels": pixels, "inter": inter})
        out[label].append(pred)
    return gts, out


def _image_scores(gts: list[dict], preds: list[dict], th: float) -> tuple[list[float], list[float], int]:
    """(y_true, y_score, hard false negatives) of one image and class at overlap `th`."""
    gts = [g for g in gts if g["inst"] >= 1000 and g["pixels"] >= MIN_REGION]
    true, score, matched, missed = [1.0] * len(gts), [-np.inf] * len(gts), [False] * len(gts), 0
    for k, g in enumerate(gts):
        found = False
        for p in g["preds"]:
            if p["inter"] / (g["pixels"] + p["pixels"] - p["inter"]) > th:
                if matched[k]:
                    true.append(0.0)
                    score.append(min(score[k], p["score"]))
                    matched.append(True)
                    score[k] = max(score[k], p["score"])
                else:
                    found, matched[k], score[k] = True, True, p["score"]
        missed += not found
    y_true = [t for t, m in zip(true, matched) if m]
    y_score = [s for s, m in zip(score, matched) if m]
    for p in preds:
        if any(g["inter"] / (g["pixels"] + p["pixels"] - g["inter"]) > th for g in p["gts"]):
            continue
        ignored = p["void"] + sum(g["inter"] for g in p["gts"] if g["inst"] < 1000)
        ignored += sum(g["inter"] for g in p["gts"] if g["pixels"] < MIN_REGION)
        if ignored / p["pixels"] <= th:
            y_true.append(0.0)
            y_score.append(p["score"])
    return y_true, y_score, missed


def curve_ap(y_true: np.ndarray, y_score: np.ndarray, hard_fns: int) -> float:
    """AP from the precision/recall points at each distinct score (cityscapesscripts' rule)."""
    if not len(y_true):
        return 0.0  # every ground truth missed, no counted prediction
    order = np.argsort(y_score)
    cum = np.cumsum(y_true[order])
    _, first = np.unique(y_score[order], return_index=True)
    total, n = cum[-1], len(y_score)
    cum = np.append(cum, 0)
    precision, recall = np.zeros(len(first) + 1), np.zeros(len(first) + 1)
    for k, idx in enumerate(first):
        tp = total - cum[idx - 1]
        fp, fn = n - idx - tp, cum[idx - 1] + hard_fns
        precision[k], recall[k] = float(tp) / (tp + fp), float(tp) / (tp + fn)
    precision[-1], recall[-1] = 1.0, 0.0
    steps = np.convolve(np.concatenate(([recall[0]], recall, [0.0])), [-0.5, 0, 0.5], "valid")
    return float(np.dot(precision, steps))


def class_ap(matches: list[tuple[dict, dict]], label: int, th: float) -> float:
    y_true, y_score, hard, have_gt, have_pred = [], [], 0, False, False
    for gts, preds in matches:
        have_gt |= any(g["inst"] >= 1000 and g["pixels"] >= MIN_REGION for g in gts[label])
        have_pred |= bool(preds[label])
        t, s, h = _image_scores(gts[label], preds[label], th)
        y_true += t
        y_score += s
        hard += h
    if have_gt and have_pred:
        return curve_ap(np.array(y_true), np.array(y_score), hard)
    return 0.0 if have_gt else float("nan")


def cityscapes_ap(matches: list[tuple[dict, dict]]) -> dict[str, Any]:
    """`cityscapes/mAP`, `cityscapes/AP@50` and per-class AP of matched images."""
    import warnings

    aps = np.array([[class_ap(matches, label, th) for th in OVERLAPS] for label in CLASSES])
    o50 = np.where(np.isclose(OVERLAPS, 0.5))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices: no class scored
        out: dict[str, Any] = {"cityscapes/mAP": float(np.nanmean(aps)), "cityscapes/AP@50": float(np.nanmean(aps[:, o50]))}
    out["classwise"] = {name: {"AP": float(np.average(aps[k])), "AP50": float(aps[k, o50[0][0]])}
                        for k, name in enumerate(CLASSES.values())}
    return out


def _decode(seg: Any, shape: tuple[int, int], where: str) -> np.ndarray:
    from pycocotools import mask as mask_utils

    try:
        rle = dict(seg)
        if isinstance(rle.get("counts"), str):
            rle["counts"] = rle["counts"].encode()
        mask = mask_utils.decode(rle).astype(bool)
    except Exception:  # noqa: BLE001 - any malformed RLE is the user's input
        raise DetError(f"{where}: 'segmentation' must be a COCO RLE {{size, counts}}") from None
    if mask.shape != shape:
        raise DetError(f"{where}: mask size {list(mask.shape)} differs from the image's {list(shape)}")
    return mask


def cityscapes_evaluate(gt: Any, results: list[dict] | str | Path, gt_dir: str | Path,
                        name: str = "results") -> dict[str, Any]:
    """Instance AP of COCO segm results (category ids = Cityscapes label ids, as `det convert
    cityscapes` writes them) against the instanceIds PNGs under `gt_dir` (the images' `segm_file`
    with labelIds -> instanceIds; `gtFine/val` for the val split)."""
    from det.core.evaluation.coco import check_results, load_coco_gt
    from det.core.fileio import read_json
    from det.core.log import track

    if isinstance(results, (str, Path)):
        name, results = str(results), read_json(results, "results file")
    coco = load_coco_gt(gt)
    results = check_results(results, coco, name, "segm")
    per_image: dict[Any, list] = {i: [] for i in coco.getImgIds()}
    for k, r in enumerate(results):
        per_image[r["image_id"]].append((k, r))
    matches = []
    for img_id in track(sorted(per_image), "matching masks"):
        img = coco.imgs[img_id]
        ids = read_instance_ids(Path(gt_dir) / _instance_file(img, name))
        preds = [(int(r["category_id"]), float(r["score"]), _decode(r["segmentation"], ids.shape, f"{name}: item {k}"))
                 for k, r in per_image[img_id]]
        matches.append(match_image(ids, preds))
    return cityscapes_ap(matches)


def _instance_file(img: dict, name: str) -> str:
    seg = img.get("segm_file")
    if not isinstance(seg, str) or "labelIds" not in seg:
        raise DetError(f"image {img.get('id')}: no 'segm_file' (*_gtFine_labelIds.png) to find its instanceIds PNG; "
                       "convert the annotations with `det convert cityscapes`")
    return seg.replace("labelIds", "instanceIds")
