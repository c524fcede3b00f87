"""Pascal VOC mean average precision at one IoU threshold (0.5 by default).

Per class: detections of all images sorted by score; each is a true positive when its best-IoU
ground truth (IoU >= thr) is not yet matched, a false positive otherwise; a detection whose
best match is a difficult/ignored box counts as neither, and ignored boxes are left out of the
number of positives. AP is the area under the monotone precision envelope ('area', VOC2010+)
or the mean of the interpolated precision at recall 0, 0.1, ..., 1 ('11points', VOC2007).
mAP averages the classes that have at least one non-ignored ground truth.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from det.core.errors import DetError
from det.core.structures.boxes import box_overlaps


def average_precision(recall: np.ndarray, precision: np.ndarray, mode: str = "area") -> float:
    """AP from a recall/precision curve (detections in descending score order)."""
    if mode == "area":
        mrec = np.concatenate([[0.0], recall, [1.0]])
        mpre = np.concatenate([[0.0], precision, [0.0]])
        mpre = np.maximum.accumulate(mpre[::-1])[::-1]
        idx = np.where(mrec[1:] != mrec[:-1])[0]
        return float(np.sum((mrec[idx + 1] - mrec[idx]) * mpre[idx + 1]))
    if mode == "11points":
        ap = 0.0
        for t in np.linspace(0, 1, 11):
            above = precision[recall >= t]
            ap += float(above.max()) if above.size else 0.0
        return ap / 11
    raise DetError(f"evaluation.eval_mode: expected 'area' or '11points', got {mode!r}")


def voc_class_ap(dets: Sequence[np.ndarray], gts: Sequence[np.ndarray], ignores: Sequence[np.ndarray],
                 iou_thr: float = 0.5, mode: str = "area", legacy_coordinate: bool = False) -> dict[str, float]:
    """One class over all images. `dets[i]` (N, 5) xyxy+score, `gts[i]` (M, 4), `ignores[i]` (M,) bool."""
    records: list[tuple[float, int]] = []  # (score, 1 tp / 0 fp), ignored detections dropped
    num_pos = 0
    for det, gt, ign in zip(dets, gts, ignores):
        det = np.asarray(det, dtype=np.float64).reshape(-1, 5)
        gt = np.asarray(gt, dtype=np.float64).reshape(-1, 4)
        ign = np.asarray(ign, dtype=bool).reshape(-1) if len(gt) else np.zeros(0, dtype=bool)
        num_pos += int((~ign).sum())
        order = np.argsort(-det[:, 4], kind="stable")
        det = det[order]
        if len(gt) == 0:
            records += [(float(s), 0) for s in det[:, 4]]
            continue
        ious = box_overlaps(det[:, :4], gt, offset=1.0 if legacy_coordinate else 0.0, eps=1e-12)
        covered = np.zeros(len(gt), dtype=bool)
        for i in range(len(det)):
            j = int(np.argmax(ious[i]))
            if ious[i, j] >= iou_thr:
                if ign[j]:
                    continue
                if not covered[j]:
                    covered[j] = True
                    records.append((float(det[i, 4]), 1))
                else:
                    records.append((float(det[i, 4]), 0))
            else:
                records.append((float(det[i, 4]), 0))
    if not records:
        return {"ap": 0.0, "num_gts": num_pos, "num_dets": 0, "recall": 0.0}
    scores = np.array([r[0] for r in records])
    tp = np.array([r[1] for r in records], dtype=np.float64)
    order = np.argsort(-scores, kind="stable")
    tp = tp[order]
    ctp, cfp = np.cumsum(tp), np.cumsum(1 - tp)
    recall = ctp / max(num_pos, 1)
    precision = ctp / np.maximum(ctp + cfp, np.finfo(np.float64).eps)
    ap = average_precision(recall, precision, mode) if num_pos else 0.0
    return {"ap": ap, "num_gts": num_pos, "num_dets": len(records), "recall": float(recall[-1]) if num_pos else 0.0}


def voc_map(dets: Sequence[Sequence[np.ndarray]], gts: Sequence[np.ndarray], gt_labels: Sequence[np.ndarray],
            gt_ignores: Sequence[np.ndarray] | None, num_classes: int, iou_thr: float = 0.5, mode: str = "area",
            legacy_coordinate: bool = False) -> tuple[float, list[dict[str, float]]]:
    """mAP over classes. `dets[i][c]` is image i's (N, 5) detections of class c; `gts[i]` (M, 4)
    with labels `gt_labels[i]` and ignore flags `gt_ignores[i]`."""
    per_class = []
    for c in range(num_classes):
        d = [img[c] for img in dets]
        g, ig = [], []
        for i, (boxes, labels) in enumerate(zip(gts, gt_labels)):
            mask = np.asarray(labels).reshape(-1) == c
            g.append(np.asarray(boxes).reshape(-1, 4)[mask])
            ign = np.zeros(len(mask), dtype=bool) if gt_ignores is None else np.asarray(gt_ignores[i], dtype=bool).reshape(-1)
            ig.append(ign[mask])
        per_class.append(voc_class_ap(d, g, ig, iou_thr, mode, legacy_coordinate))
    valid = [r["ap"] for r in per_class if r["num_gts"] > 0]
    return (float(np.mean(valid)) if valid else 0.0), per_class


def voc_evaluate(gt, results, iou_thr: float = 0.5, mode: str = "area", classwise: bool = False,
                 name: str = "results") -> dict[str, float]:
    """VOC mAP of COCO-format results against COCO ground truth (`det eval --metric voc`): boxes
    xywh -> xyxy, crowd (`iscrowd`) and `ignore` boxes as difficult ones. Keys as VOCMetric's."""
    from pathlib import Path

    from det.core.evaluation.coco import check_results, load_coco_gt
    from det.core.fileio import read_json

    if isinstance(results, (str, Path)):
        name, results = str(results), read_json(results, "results file")
    coco = load_coco_gt(gt)
    results = check_results(results, coco, name, "bbox")
    cats = sorted(coco.getCatIds())
    label = {c: k for k, c in enumerate(cats)}
    img_ids = sorted(coco.getImgIds())
    index = {i: k for k, i in enumerate(img_ids)}
    per = [[[] for _ in cats] for _ in img_ids]
    for r in results:
        x, y, w, h = (float(v) for v in r["bbox"])
        per[index[r["image_id"]]][label[r["category_id"]]].append((x, y, x + w, y + h, float(r["score"])))
    dets = [[np.array(c, np.float64).reshape(-1, 5) for c in img] for img in per]
    gts, labels, ignores = [], [], []
    for i in img_ids:
        anns = coco.imgToAnns.get(i, [])
        gts.append(np.array([[a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3]]
                             for a in anns], np.float64).reshape(-1, 4))
        labels.append(np.array([label[a["category_id"]] for a in anns], np.int64))
        ignores.append(np.array([bool(a.get("iscrowd", 0)) or bool(a.get("ignore", 0)) for a in anns], bool))
    mean_ap, per_class = voc_map(dets, gts, labels, ignores, len(cats), iou_thr, mode)
    tag = f"AP{int(round(iou_thr * 100))}"
    out = {"pascal_voc/mAP": mean_ap, f"pascal_voc/{tag}": mean_ap}
    if classwise:
        for c, r in zip(cats, per_class):
            out[f"pascal_voc/{coco.cats[c].get('name', c)}_{tag}"] = r["ap"]
    return out
