"""Fuse COCO results of several models per image with weighted boxes fusion (det.ops).

Boxes go from COCO xywh pixels to corners, are clipped to their image and divided by its width
and height (sizes from the annotation file), fused per image and label by
`det.ops.weighted_boxes_fusion_batch` (ensemble-boxes' algorithm, every image in one compiled
call), and come back as xywh pixels. MMDetection's fuse_results.py hands xywh pixel boxes to a
corner-based fusion that clips to [0, 1]; that is not repeated here.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from det.core.errors import DetError

CONF_TYPES = ("avg", "max", "box_and_model_avg", "absent_model_aware_avg")


def image_sizes(gt: dict, name: str = "annotations") -> dict[Any, tuple[float, float]]:
    sizes = {}
    for img in gt["images"]:
        if "width" not in img or "height" not in img:
            raise DetError(f"{name}: image {img['id']} has no width/height (needed to normalise boxes)")
        sizes[img["id"]] = (float(img["width"]), float(img["height"]))
    return sizes


def to_arrays(results: Sequence[dict], index: dict[Any, int], sizes_wh: np.ndarray):
    """COCO results -> normalised clipped corners (N, 4), scores, labels, image indices."""
    n = len(results)
    if n == 0:
        return np.zeros((0, 4)), np.zeros(0), np.zeros(0, np.int64), np.zeros(0, np.int64)
    xywh = np.array([d["bbox"] for d in results], dtype=np.float64).reshape(n, 4)
    scores = np.fromiter((d["score"] for d in results), dtype=np.float64, count=n)
    labels = np.fromiter((d["category_id"] for d in results), dtype=np.int64, count=n)
    img = np.fromiter((index[d["image_id"]] for d in results), dtype=np.int64, count=n)
    wh = sizes_wh[img]
    corners = np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1)
    corners = np.clip(corners, 0.0, np.concatenate([wh, wh], axis=1))
    return corners / np.concatenate([wh, wh], axis=1), scores, labels, img


def fuse(predictions: Sequence[Sequence[dict]], gt: dict, weights: Sequence[float] | None = None,
         iou_thr: float = 0.55, skip_box_thr: float = 0.0, conf_type: str = "avg") -> list[dict]:
    """Fuse several models' COCO results (already validated against `gt`) into one list."""
    import torch

    from det.ops import weighted_boxes_fusion_batch

    if conf_type not in CONF_TYPES:
        from det.core.errors import did_you_mean

        raise DetError(f"--conf-type '{conf_type}' is not supported{did_you_mean(conf_type, CONF_TYPES)}")
    num_models = len(predictions)
    if num_models < 1:
        raise DetError("give at least one results file")
    if weights is not None and len(weights) != num_models:
        raise DetError(f"--weights needs one value per results file ({num_models}), got {len(weights)}")
    if not 0.0 <= iou_thr <= 1.0:
        raise DetError(f"--fusion-iou-thr must be in [0, 1], got {iou_thr}")
    sizes = image_sizes(gt)
    ids = list(sizes)
    index = {img_id: i for i, img_id in enumerate(ids)}
    sizes_wh = np.array([sizes[i] for i in ids], dtype=np.float64).reshape(-1, 2)
    parts = [to_arrays(p, index, sizes_wh) for p in predictions]
    boxes = np.concatenate([p[0] for p in parts])
    scores = np.concatenate([p[1] for p in parts])
    labels = np.concatenate([p[2] for p in parts])
    imgs = np.concatenate([p[3] for p in parts])
    models = np.concatenate([np.full(len(p[1]), m, np.int64) for m, p in enumerate(parts)])
    fb, fs, fl, fi = weighted_boxes_fusion_batch(
        torch.from_numpy(boxes), torch.from_numpy(scores), torch.from_numpy(labels), torch.from_numpy(imgs),
        torch.from_numpy(models), num_models=num_models, weights=weights, iou_thr=iou_thr,
        skip_box_thr=skip_box_thr, conf_type=conf_type)
    fb, fs, fl, fi = fb.numpy(), fs.numpy(), fl.numpy(), fi.numpy()
    wh = sizes_wh[fi]
    x1y1 = fb[:, :2] * wh
    out_wh = fb[:, 2:] * wh - x1y1
    xywh = np.concatenate([x1y1, out_wh], axis=1).tolist()
    img_ids = [ids[i] for i in fi.tolist()]
    return [{"image_id": i, "category_id": c, "bbox": b, "score": s}
            for i, c, b, s in zip(img_ids, fl.tolist(), xywh, fs.tolist())]


def run_fusion(pred_paths: Sequence[str], ann_path: str, weights: Sequence[float] | None = None,
               iou_thr: float = 0.55, skip_box_thr: float = 0.0, conf_type: str = "avg",
               eval_single: bool = False) -> dict:
    """Read and validate the files, fuse, and evaluate the fused (and single) results."""
    from det.core.evaluation.coco import coco_evaluate, load_coco_gt, load_coco_results
    from det.core.fileio import read_json

    data = read_json(ann_path, "annotation file")
    coco = load_coco_gt(data)
    image_sizes(data, str(ann_path))
    preds = [load_coco_results(p, coco) for p in pred_paths]
    fused = fuse(preds, data, weights, iou_thr, skip_box_thr, conf_type)
    table = []
    if eval_single:
        for p, res in zip(pred_paths, preds):
            table.append({"name": str(p), "detections": len(res), **_ap(coco_evaluate(coco, res))})
    table.append({"name": "fused (WBF)", "detections": len(fused), **_ap(coco_evaluate(coco, fused))})
    return {"fused": fused, "table": table}


def _ap(metrics: dict) -> dict:
    return {k[len("coco/bbox_"):]: v for k, v in metrics.items() if k.startswith("coco/bbox_")}
