"""Detection confusion matrix with MMDetection's assignment rules (tools/analysis_tools/
confusion_matrix.py), computed from COCO files.

Per image, detections with score >= score_thr (optionally re-suppressed per class with NMS) are
compared to every ground-truth box by IoU (float32, like MMDetection's bbox_overlaps):
- each (detection, ground truth) pair with IoU >= tp_iou_thr adds 1 to [gt class, det class]
  (a detection overlapping two ground truths counts twice, as in MMDetection);
- a detection that overlaps no ground truth adds 1 to [background, det class];
- a ground truth that no detection of its own class overlaps adds 1 to [gt class, background].
Ground truth is read the way MMDetection's CocoDataset reads it: annotations with `ignore`,
zero-area, width or height < 1, or lying outside the image are dropped; crowd boxes are kept.
MMDetection's NMS branch keeps the pre-NMS scores for the kept boxes (an index mismatch); here
the kept boxes keep their own scores.
"""
from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from det.core.errors import DetError
from det.core.evaluation.coco import check_results, validate_gt
from det.core.fileio import read_json
from det.core.structures.boxes import box_overlaps


@dataclass
class GroundTruth:
    classes: list[str]
    cat_to_label: dict[Any, int]
    boxes: dict[Any, np.ndarray]   # image id -> (G, 4) float64 xyxy
    labels: dict[Any, np.ndarray]  # image id -> (G,) int64
    image_ids: list[Any]
    sizes: dict[Any, tuple[float, float]]  # image id -> (width, height) when known


def read_gt(gt: str | Path | dict, name: str | None = None) -> GroundTruth:
    """Parse COCO annotations with CocoDataset's filtering rules."""
    if isinstance(gt, (str, Path)):
        name = str(gt)
        gt = read_json(gt, "annotation file")
    name = name or "annotations"
    validate_gt(gt, name)
    cats = gt["categories"]
    classes = [str(c.get("name", c["id"])) for c in cats]
    cat_to_label = {c["id"]: i for i, c in enumerate(cats)}
    sizes = {}
    for img in gt["images"]:
        if "width" in img and "height" in img:
            sizes[img["id"]] = (float(img["width"]), float(img["height"]))
    per_img: dict[Any, list] = {img["id"]: [] for img in gt["images"]}
    for ann in gt.get("annotations", []):
        if ann.get("ignore", False) or ann["image_id"] not in per_img or ann["category_id"] not in cat_to_label:
            continue
        x1, y1, w, h = (float(v) for v in ann["bbox"])
        if ann["image_id"] in sizes:
            iw, ih = sizes[ann["image_id"]]
            inter_w = max(0.0, min(x1 + w, iw) - max(x1, 0.0))
            inter_h = max(0.0, min(y1 + h, ih) - max(y1, 0.0))
            if inter_w * inter_h == 0:
                continue
        if float(ann.get("area", w * h)) <= 0 or w < 1 or h < 1:
            continue
        per_img[ann["image_id"]].append((x1, y1, x1 + w, y1 + h, cat_to_label[ann["category_id"]]))
    boxes, labels = {}, {}
    for img_id, rows in per_img.items():
        arr = np.array(rows, dtype=np.float64).reshape(-1, 5)
        boxes[img_id] = arr[:, :4]
        labels[img_id] = arr[:, 4].astype(np.int64)
    return GroundTruth(classes, cat_to_label, boxes, labels, list(per_img), sizes)


def group_results(results: Sequence[dict], gt: GroundTruth) -> dict[Any, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """COCO results -> image id -> (xyxy float64 (D, 4), scores (D,), labels (D,))."""
    rows: dict[Any, list] = {}
    for det in results:
        x, y, w, h = (float(v) for v in det["bbox"])
        rows.setdefault(det["image_id"], []).append((x, y, x + w, y + h, float(det["score"]), gt.cat_to_label[det["category_id"]]))
    out = {}
    for img_id, r in rows.items():
        arr = np.array(r, dtype=np.float64)
        out[img_id] = (arr[:, :4], arr[:, 4], arr[:, 5].astype(np.int64))
    return out


def _nms_per_class(boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray, iou_thr: float):
    import torch
    from torchvision.ops import batched_nms

    keep = batched_nms(torch.from_numpy(boxes.astype(np.float32)), torch.from_numpy(scores.astype(np.float32)),
                       torch.from_numpy(labels), float(iou_thr)).numpy()
    keep.sort()
    return boxes[keep], scores[keep], labels[keep]


def accumulate_image(cm: np.ndarray, gt_boxes: np.ndarray, gt_labels: np.ndarray, det_boxes: np.ndarray,
                     det_scores: np.ndarray, det_labels: np.ndarray, score_thr: float = 0.3,
                     tp_iou_thr: float = 0.5, nms_iou_thr: float | None = None) -> None:
    """Add one image's counts to `cm` ((C + 1) x (C + 1), last row/column = background)."""
    keep = det_scores >= score_thr
    det_boxes, det_scores, det_labels = det_boxes[keep], det_scores[keep], det_labels[keep]
    if nms_iou_thr and len(det_boxes):
        det_boxes, det_scores, det_labels = _nms_per_class(det_boxes, det_scores, det_labels, nms_iou_thr)
    matched = box_overlaps(det_boxes, gt_boxes, dtype=np.float32) >= np.float32(tp_iou_thr)
    di, gj = np.nonzero(matched)
    np.add.at(cm, (gt_labels[gj], det_labels[di]), 1)
    np.add.at(cm, (-1, det_labels[~matched.any(axis=1)]), 1)
    found = (matched & (det_labels[:, None] == gt_labels[None, :])).any(axis=0)
    np.add.at(cm, (gt_labels[~found], -1), 1)


def confusion_matrix(gt: GroundTruth, results: Sequence[dict], score_thr: float = 0.3, tp_iou_thr: float = 0.5,
                     nms_iou_thr: float | None = None, progress: bool = True) -> np.ndarray:
    """(C + 1) x (C + 1) int64 counts: rows ground-truth classes then background, columns
    predicted classes then background."""
    n = len(gt.classes)
    cm = np.zeros((n + 1, n + 1), dtype=np.int64)
    dets = group_results(results, gt)
    empty = (np.zeros((0, 4)), np.zeros(0), np.zeros(0, np.int64))
    ids = gt.image_ids
    if progress:
        from det.core.log import track

        ids = track(ids, "confusion matrix")
    for img_id in ids:
        boxes, scores, labels = dets.get(img_id, empty)
        accumulate_image(cm, gt.boxes[img_id], gt.labels[img_id], boxes, scores, labels, score_thr, tp_iou_thr, nms_iou_thr)
    return cm


def precision_recall(cm: np.ndarray, classes: Sequence[str]) -> dict[str, dict[str, float | int]]:
    """Per class from the matrix: precision = diagonal / column sum (all its detections),
    recall = diagonal / row sum (all its ground truth, missed ones in the background column)."""
    out = {}
    for i, name in enumerate(classes):
        col, row = int(cm[:, i].sum()), int(cm[i, :].sum())
        out[name] = {"precision": float(cm[i, i] / col) if col else float("nan"),
                     "recall": float(cm[i, i] / row) if row else float("nan"),
                     "tp": int(cm[i, i]), "detections": col, "ground_truth": row}
    return out


def matrix_csv(cm: np.ndarray, classes: Sequence[str]) -> str:
    names = list(classes) + ["background"]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["gt \\ pred"] + names)
    for name, row in zip(names, cm):
        writer.writerow([name] + [int(v) for v in row])
    return buf.getvalue()


def plot_matrix(cm: np.ndarray, classes: Sequence[str], path: str | Path, title: str = "Normalized confusion matrix",
                cmap: str = "plasma") -> Path:
    """seaborn heatmap of row-normalised percentages, each cell annotated with % and count."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    from det.core.fileio import atomic_write

    names = list(classes) + ["background"]
    n = len(names)
    rows = cm.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        pct = np.where(rows > 0, cm / np.maximum(rows, 1) * 100.0, np.nan)
    annot = np.array([[f"{p:.0f}%\n{c}" if not np.isnan(p) else f"-\n{c}" for p, c in zip(pr, cr)]
                      for pr, cr in zip(pct, cm)])
    size = max(4.0, 0.55 * n + 2)
    fig, ax = plt.subplots(figsize=(size * 1.15, size), dpi=150)
    sns.heatmap(pct, annot=annot, fmt="", cmap=cmap, vmin=0, vmax=100, square=True, ax=ax,
                xticklabels=names, yticklabels=names, cbar_kws={"label": "% of ground-truth row"},
                annot_kws={"fontsize": max(2.5, min(8.0, 180.0 / n))}, linewidths=0.3, linecolor="white")
    ax.set_xlabel("Predicted label")
    ax.set_ylabel("Ground-truth label")
    ax.set_title(title)
    ax.xaxis.tick_top()
    ax.xaxis.set_label_position("top")
    plt.setp(ax.get_xticklabels(), rotation=45, ha="left", rotation_mode="anchor")
    plt.setp(ax.get_yticklabels(), rotation=0)
    fig.tight_layout()
    atomic_write(path, lambda fh: fig.savefig(fh, format="png"))
    plt.close(fig)
    return Path(path)


def run_confusion_matrix(results_path: str | Path, ann_path: str | Path, score_thr: float = 0.3,
                         tp_iou_thr: float = 0.5, nms_iou_thr: float | None = None) -> dict:
    """Read and validate the files, compute the matrix and precision/recall."""
    from det.core.evaluation.coco import load_coco_gt

    data = read_json(ann_path, "annotation file")
    gt = read_gt(data, str(ann_path))
    coco = load_coco_gt(data)
    results = check_results(read_json(results_path, "results file"), coco, str(results_path))
    if not 0 <= tp_iou_thr <= 1:
        raise DetError(f"--tp-iou-thr must be in [0, 1], got {tp_iou_thr}")
    cm = confusion_matrix(gt, results, score_thr, tp_iou_thr, nms_iou_thr)
    return {"classes": gt.classes, "matrix": cm, "per_class": precision_recall(cm, gt.classes),
            "score_thr": score_thr, "tp_iou_thr": tp_iou_thr, "nms_iou_thr": nms_iou_thr}
