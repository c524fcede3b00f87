"""CrowdHuman metrics of full-body detections, as MMDetection's CrowdHumanMetric (eval_mode 0,
Caltech matching, IoU 0.5):

- AP: the trapezoid area under the precision/recall points of the detections sorted by score
  (the first point is the curve's start: no area from recall 0 to it);
- mMR (MR^-2): the log-average miss rate at the 9 false-positives-per-image points 10^-2 .. 1;
- JI: the Jaccard index k / (m + n - k) of a maximum bipartite matching at IoU >= 0.5, averaged
  over images and maximised over score thresholds 0.0 .. 0.9.

Ground truth of the tag `person` counts; other tags and `extra.ignore` boxes are ignore regions:
a detection covering one (intersection over the detection's area > 0.5) is neither TP nor FP.
Boxes are clipped to the image and overlaps computed in float32, as MMDetection does, so the
numbers match it exactly. Keys: `crowd_human/mAP`, `crowd_human/mMR`, `crowd_human/JI` (not rounded).
"""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from det.core.errors import DetError
from det.core.structures.boxes import box_overlaps

IOU_THR = 0.5
MR_REF = (0.0100, 0.0178, 0.03160, 0.0562, 0.1000, 0.1778, 0.3162, 0.5623, 1.000)
TAGS = ("background", "person")  # MMDetection's PERSON_CLASSES: a tag's value is its index, else -1


def clip(boxes: np.ndarray, height: int, width: int) -> np.ndarray:
    """MMDetection's clip_all_boader: x1 in [0, w - 1], x2 in [0, w] (and the same for y)."""
    out = boxes.copy()
    out[:, 0] = np.minimum(np.maximum(out[:, 0], 0), width - 1)
    out[:, 1] = np.minimum(np.maximum(out[:, 1], 0), height - 1)
    out[:, 2] = np.maximum(np.minimum(out[:, 2], width), 0)
    out[:, 3] = np.maximum(np.minimum(out[:, 3], height), 0)
    return out


def gt_arrays(image: dict) -> tuple[np.ndarray, np.ndarray]:
    """Clipped x1y1x2y2 ground truth of one image and its tags (1 person, -1 ignore)."""
    boxes = np.array([b["box"] for b in image["boxes"]], np.float64).reshape(-1, 4)
    boxes[:, 2:] += boxes[:, :2]
    tags = np.array([-1 if b["ignore"] else (TAGS.index(b["tag"]) if b["tag"] in TAGS else -1)
                     for b in image["boxes"]], np.float64)
    return clip(boxes, image["height"], image["width"]), tags


def caltech_match(dets: np.ndarray, gt: np.ndarray, tags: np.ndarray, thr: float = IOU_THR) -> list[tuple[float, int]]:
    """(score, 1 TP | 0 FP) of an image's detections (x1y1x2y2 + score) in score order; a
    detection that matches no person but covers an ignore region is dropped."""
    dets = dets[np.argsort(-dets[:, 4], kind="stable")]
    order = np.argsort(-tags, kind="stable")
    gt, tags = gt[order], tags[order]
    iou, ioa = box_overlaps(dets, gt, "iou", dtype=np.float32), box_overlaps(dets, gt, "iof", dtype=np.float32)
    positive, taken = tags > 0, np.zeros(len(gt), bool)
    out = []
    for i in range(len(dets)):
        cand = np.flatnonzero(positive & ~taken & (iou[i] > thr))
        if cand.size:
            taken[cand[np.argmax(iou[i, cand])]] = True
            out.append((float(dets[i, 4]), 1))
        elif not (~positive & (ioa[i] > thr)).any():
            out.append((float(dets[i, 4]), 0))
    return out


def _curve(labels: np.ndarray, gt_num: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    tp = np.cumsum(labels == 1).astype(np.float64)
    fp = np.cumsum(labels == 0).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return tp / (tp + (gt_num - tp)), tp / (tp + fp), fp


def average_precision(labels: np.ndarray, gt_num: int) -> float:
    """Trapezoid area under the precision/recall points, summed in order as MMDetection does."""
    if gt_num <= 0:
        return float("nan")
    recall, precision, _ = _curve(labels, gt_num)
    if len(recall) < 2:
        return 0.0
    parts = (recall[1:] - recall[:-1]) * ((precision[:-1] + precision[1:]) / 2)
    return float(np.cumsum(parts)[-1])


def miss_rate(labels: np.ndarray, gt_num: int, img_num: int, ref: tuple[float, ...] = MR_REF) -> float:
    """Log-average miss rate at the FPPI points `ref` (the first point reaching each, else the last)."""
    if gt_num <= 0 or not len(labels):
        return float("nan")
    recall, _, fp = _curve(labels, gt_num)
    fppi, missed = fp / img_num, 1.0 - recall
    picks = [int(np.argmax(fppi >= r)) if (fppi >= r).any() else len(fppi) - 1 for r in ref]
    with np.errstate(divide="ignore"):
        return float(np.exp(np.log(missed[picks]).mean()))


def _ignored_count(boxes: np.ndarray, ignore: np.ndarray, thr: float) -> int:
    if not ignore.size or not len(boxes):
        return 0
    return int((box_overlaps(boxes, ignore, "iof", dtype=np.float32).max(axis=1) > thr).sum())


def _ji_image(dets: np.ndarray, gt: np.ndarray, tags: np.ndarray, score_thr: float, thr: float) -> tuple[float, int, int]:
    """(k / (m + n - k), m, n) of one image at one score threshold."""
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import maximum_bipartite_matching

    boxes = dets[dets[:, 4] > score_thr][:, :4]
    keep = tags != -1
    pos, ign = gt[keep], gt[~keep]
    pairs = np.zeros((0, 2), np.int64)
    if len(boxes) and len(pos):
        iou = box_overlaps(boxes, pos, "iou", dtype=np.float32)
        iou[iou < thr] = 0
        match = maximum_bipartite_matching(csr_matrix(iou), perm_type="column")
        rows = np.flatnonzero(match != -1)
        pairs = np.stack([rows, match[rows]], 1)
    free_d = np.setdiff1d(np.arange(len(boxes)), pairs[:, 0])
    free_g = np.setdiff1d(np.arange(len(pos)), pairs[:, 1])
    k = len(pairs)
    m = len(pos) - _ignored_count(pos[free_g], ign, thr)
    n = len(boxes) - _ignored_count(boxes[free_d], ign, thr)
    return k / (m + n - k + 1e-6), m, n


def jaccard_index(images: list[tuple[np.ndarray, np.ndarray, np.ndarray]], thr: float = IOU_THR) -> float:
    """Best (over score thresholds 0.0 .. 0.9) mean JI over images that have a person or a detection."""
    means = []
    for step in range(10):
        rows = [_ji_image(d, g, t, 1e-1 * step, thr) for d, g, t in images]
        counted = sum(1 for _, m, n in rows if m != 0 or n != 0)
        total = np.sum([r for r, _, _ in rows]) if rows else 0.0
        means.append(float(total / counted) if counted else float("nan"))
    return max(means)  # Python's max, as MMDetection takes it (NaN only when the first one is)


def group_results(results: list[dict], images: list[dict], name: str) -> list[np.ndarray]:
    """Per image (in `images` order) its detections x1y1x2y2 + score, in results order. A result's
    image_id is the image's `img_id` (its index in the odgt file) or its odgt ID string."""
    from det.core.evaluation.coco import check_results, load_coco_gt

    index = {im["ID"]: im["img_id"] for im in images}
    results = [{**r, "image_id": index.get(r["image_id"], r["image_id"])} if isinstance(r, dict)
               and isinstance(r.get("image_id"), str) else r for r in results] if isinstance(results, list) else results
    coco = load_coco_gt({"images": [{"id": im["img_id"]} for im in images],
                         "categories": [{"id": 1, "name": "person"}]})
    check_results(results, coco, name, "bbox")
    per: dict[Any, list] = defaultdict(list)
    for r in results:
        x, y, w, h = (float(v) for v in r["bbox"])
        per[r["image_id"]].append((x, y, x + w, y + h, float(r["score"])))
    return [np.array(per.get(im["img_id"], []), np.float64).reshape(-1, 5) for im in images]


def crowdhuman_evaluate(images: list[dict], results: list[dict] | str | Path, metrics: tuple[str, ...] = ("AP", "MR", "JI"),
                        iou_thr: float = IOU_THR, name: str = "results") -> dict[str, float]:
    """AP, mMR and JI of COCO-format results (category 1 = person) against CrowdHuman images
    ({img_id, ID, height, width, boxes: [{box: xywh, tag, ignore}]}, as read from an odgt file)."""
    from det.core.fileio import read_json

    unknown = [m for m in metrics if m not in ("AP", "MR", "JI")]
    if unknown:
        raise DetError(f"CrowdHuman metric '{unknown[0]}': expected AP, MR or JI")
    if isinstance(results, (str, Path)):
        name, results = str(results), read_json(results, "results file")
    dets = group_results(results, images, name)
    gts = [gt_arrays(im) for im in images]
    dets = [clip(d, im["height"], im["width"]) for d, im in zip(dets, images)]
    scored = [s for d, (g, t) in zip(dets, gts) for s in caltech_match(d, g, t, iou_thr)]
    order = sorted(range(len(scored)), key=lambda i: scored[i][0], reverse=True)
    labels = np.array([scored[i][1] for i in order], np.int64)
    gt_num = int(sum(len(t) - int((t == -1).sum()) for _, t in gts))
    out: dict[str, float] = {}
    if "AP" in metrics:
        out["crowd_human/mAP"] = average_precision(labels, gt_num)
    if "MR" in metrics:
        out["crowd_human/mMR"] = miss_rate(labels, gt_num, len(images))
    if "JI" in metrics:
        out["crowd_human/JI"] = jaccard_index([(d, g, t) for d, (g, t) in zip(dets, gts)], iou_thr)
    return out


def load_crowdhuman(ann: str | Path, sizes: str | Path | None = None, img_dir: str | Path | None = None) -> list[dict]:
    """CrowdHuman images of an odgt file with their sizes (id_hw JSON `sizes`, by default
    id_hw_{train,val}.json beside the file, or the headers of `img_dir`/<ID>.jpg, default Images/)."""
    from det.core.data.datasets.crowdhuman import default_sizes_file, image_sizes, read_odgt

    records = read_odgt(ann)
    ann = Path(ann)
    sizes = sizes if sizes is not None else default_sizes_file(ann, ann.parent)
    table = image_sizes([r["ID"] for r in records], sizes, img_dir if img_dir is not None else ann.parent / "Images")
    return [{"img_id": k, "ID": r["ID"], "height": table[r["ID"]][0], "width": table[r["ID"]][1], "boxes": r["boxes"]}
            for k, r in enumerate(records)]
