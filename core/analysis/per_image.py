"""Per-image COCO AP and drawings of the best and worst images (`det analyze-results`).

One COCOeval.evaluate() pass matches detections for every (image, class); each image's AP is
then accumulated from its own matches exactly as pycocotools accumulates a whole dataset (101
recall points, precision envelope, IoU 0.50:0.95, at most 100 detections), averaged over the
classes present in that image's ground truth. This equals running COCOeval with imgIds=[image],
at the cost of one evaluation. Images without ground truth have no AP and are not ranked.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from det.core.errors import DetError


def per_image_ap(coco, results: list[dict], max_dets: int = 100) -> dict[Any, float]:
    """{image id: AP} for every image with (non-crowd) ground truth."""
    from pycocotools.cocoeval import COCOeval

    from det.core.evaluation.coco import _load_res, quiet

    dt = _load_res(coco, results, "bbox")
    ev = COCOeval(coco, dt, "bbox")
    ev.params.maxDets = [max_dets]
    ev.params.areaRng = [ev.params.areaRng[0]]
    ev.params.areaRngLbl = ["all"]
    with quiet():
        ev.evaluate()
    p = ev.params
    n_img, rec_thrs = len(p.imgIds), p.recThrs
    per_img: dict[Any, list[float]] = {}
    for k in range(len(p.catIds)):
        for i, img_id in enumerate(p.imgIds):
            e = ev.evalImgs[k * n_img + i]
            if e is None:
                continue
            npig = int(np.count_nonzero(e["gtIgnore"] == 0))
            if npig == 0:
                continue
            order = np.argsort(-np.asarray(e["dtScores"]), kind="mergesort")
            dtm = e["dtMatches"][:, order][:, :max_dets]
            dtig = e["dtIgnore"][:, order][:, :max_dets]
            tps = np.cumsum(np.logical_and(dtm != 0, ~dtig), axis=1, dtype=np.float64)
            fps = np.cumsum(np.logical_and(dtm == 0, ~dtig), axis=1, dtype=np.float64)
            aps = []
            for tp, fp in zip(tps, fps):
                rc = tp / npig
                pr = tp / (fp + tp + np.spacing(1))
                pr = np.maximum.accumulate(pr[::-1])[::-1] if len(pr) else pr
                q = np.zeros(len(rec_thrs))
                idx = np.searchsorted(rc, rec_thrs, side="left")
                valid = idx < len(pr)
                q[valid] = pr[idx[valid]]
                aps.append(q.mean())
            per_img.setdefault(img_id.item() if hasattr(img_id, "item") else img_id, []).append(float(np.mean(aps)))
    return {img_id: float(np.mean(v)) for img_id, v in per_img.items()}


def rank(aps: dict[Any, float], topk: int) -> tuple[list[Any], list[Any]]:
    """(best topk, worst topk) image ids; ties broken by image id for a stable order."""
    order = sorted(aps, key=lambda i: (-aps[i], str(i)))
    worst = sorted(aps, key=lambda i: (aps[i], str(i)))
    return order[:topk], worst[:topk]


def draw_pair(img: np.ndarray, gt_boxes: np.ndarray, gt_labels: np.ndarray, det_boxes: np.ndarray,
              det_labels: np.ndarray, det_scores: np.ndarray, classes: Sequence[str], title: str) -> np.ndarray:
    """Ground truth (left) and predictions (right) side by side with a title bar."""
    import cv2

    from det.core.vis import draw_instances

    left = draw_instances(img, gt_boxes, gt_labels, classes)
    right = draw_instances(img, det_boxes, det_labels, classes, scores=det_scores)
    gap = np.full((img.shape[0], 8, 3), 255, np.uint8)
    body = np.concatenate([left, gap, right], axis=1)
    bar = np.full((28, body.shape[1], 3), 255, np.uint8)
    cv2.putText(bar, f"{title}   |   left: ground truth   right: predictions", (6, 19), cv2.FONT_HERSHEY_SIMPLEX,
                0.5, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([bar, body], axis=0)


def analyze_results(results_path: str | Path, ann_path: str | Path, img_dir: str | Path, out_dir: str | Path,
                    topk: int = 20, show_score_thr: float = 0.3) -> dict:
    """Rank images by their AP and draw the top-k best (out_dir/good) and worst (out_dir/bad)."""
    import cv2

    from det.core.evaluation.coco import load_coco_gt, load_coco_results
    from det.core.fileio import atomic_write, atomic_write_json
    from det.core.log import track

    if topk < 1:
        raise DetError("--topk must be >= 1")
    coco = load_coco_gt(ann_path)
    results = load_coco_results(results_path, coco)
    img_dir, out_dir = Path(img_dir), Path(out_dir)
    if not img_dir.is_dir():
        raise DetError(f"{img_dir}: image folder not found")
    aps = per_image_ap(coco, results)
    if not aps:
        raise DetError(f"{ann_path}: no image has ground truth to compute an AP")
    best, worst = rank(aps, topk)
    cat_ids = coco.getCatIds()
    label_of = {c: i for i, c in enumerate(cat_ids)}
    classes = [str(coco.cats[c].get("name", c)) for c in cat_ids]
    by_img: dict[Any, list[dict]] = {}
    for det in results:
        if det["score"] >= show_score_thr:
            by_img.setdefault(det["image_id"], []).append(det)
    written: dict[str, list[str]] = {"good": [], "bad": []}
    jobs = [("good", i, img_id) for i, img_id in enumerate(best)] + [("bad", i, img_id) for i, img_id in enumerate(worst)]
    for folder, rank_i, img_id in track(jobs, "drawing"):
        info = coco.imgs[img_id]
        path = img_dir / info.get("file_name", f"{img_id}.jpg")
        img = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if img is None:
            raise DetError(f"{path}: image not found or unreadable (from {ann_path}, image id {img_id})")
        anns = [a for a in coco.imgToAnns.get(img_id, []) if not a.get("iscrowd", 0)]
        gt_boxes = np.array([_xyxy(a["bbox"]) for a in anns], np.float64).reshape(-1, 4)
        gt_labels = np.array([label_of[a["category_id"]] for a in anns], np.int64)
        dets = by_img.get(img_id, [])
        det_boxes = np.array([_xyxy(d["bbox"]) for d in dets], np.float64).reshape(-1, 4)
        det_labels = np.array([label_of[d["category_id"]] for d in dets], np.int64)
        det_scores = np.array([d["score"] for d in dets], np.float64)
        canvas = draw_pair(img, gt_boxes, gt_labels, det_boxes, det_labels, det_scores, classes,
                           f"#{rank_i + 1} AP={aps[img_id]:.3f}")
        stem = Path(str(info.get("file_name", img_id))).stem
        out = out_dir / folder / f"{rank_i + 1:03d}_{stem}_ap{aps[img_id]:.3f}.jpg"
        ok, buf = cv2.imencode(".jpg", canvas)
        atomic_write(out, lambda fh, b=buf: fh.write(b.tobytes()))
        written[folder].append(str(out))
    table = [{"image_id": i, "file_name": coco.imgs[i].get("file_name"), "ap": aps[i]} for i in sorted(aps, key=str)]
    atomic_write_json(out_dir / "per_image_ap.json", table, indent=1)
    return {"images_ranked": len(aps), "images_without_gt": len(coco.getImgIds()) - len(aps),
            "mean_per_image_ap": float(np.mean(list(aps.values()))),
            "best": [{"image_id": i, "ap": aps[i]} for i in best], "worst": [{"image_id": i, "ap": aps[i]} for i in worst],
            "files": written, "per_image_ap": str(out_dir / "per_image_ap.json")}


def _xyxy(b: Sequence[float]) -> list[float]:
    x, y, w, h = (float(v) for v in b)
    return [x, y, x + w, y + h]
