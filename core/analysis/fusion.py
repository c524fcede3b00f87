"""Fuse COCO results of several models per image with weighted boxes fusion (det.ops).

Boxes go from COCO xywh pixels to corners, are clipped to their image and divided by its width
and height (sizes from the annotation file), fused per image and label by det's compiled WBF op
(`torch.ops.det.weighted_boxes_fusion`, the kernel behind `det.ops.weighted_boxes_fusion_batch`:
ensemble-boxes' algorithm, every image in one call; rows are grouped by image here with numpy),
and come back as xywh pixels. MMDetection's fuse_results.py hands xywh pixel boxes to a
corner-based fusion that clips to [0, 1]; that is not repeated here.
"""
from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator, Sequence
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
    # One pass over the dicts (the slow part for large files); image ids mapped afterwards.
    flat = np.fromiter((v for d in results for v in (d["category_id"], d["score"], *d["bbox"])),
                       dtype=np.float64, count=6 * n).reshape(n, 6)
    keys = np.array(list(index), dtype=object)
    if all(isinstance(k, (int, np.integer)) and not isinstance(k, bool) for k in keys):
        ids = np.fromiter((d["image_id"] for d in results), dtype=np.int64, count=n)
        sorted_keys = np.array(sorted(index), dtype=np.int64)
        dense = np.array([index[k] for k in sorted_keys.tolist()], dtype=np.int64)
        img = dense[np.searchsorted(sorted_keys, ids)]
    else:
        img = np.fromiter((index[d["image_id"]] for d in results), dtype=np.int64, count=n)
    labels = flat[:, 0].astype(np.int64)
    scores = flat[:, 1].copy()
    xywh = flat[:, 2:]
    wh = sizes_wh[img]
    wh2 = np.concatenate([wh, wh], axis=1)
    corners = np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1)
    return np.clip(corners, 0.0, wh2) / wh2, scores, labels, img


def fuse(predictions: Sequence[Sequence[dict]], gt: dict, weights: Sequence[float] | None = None,
         iou_thr: float = 0.55, skip_box_thr: float = 0.0, conf_type: str = "avg") -> list[dict]:
    """Fuse several models' COCO results (already validated against `gt`) into one list."""
    import torch

    import det.ops  # noqa: F401 - registers torch.ops.det.*
    from det.ops.wbf import CONF_TYPES as CONF_CODES

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
    try:
        parts = [to_arrays(p, index, sizes_wh) for p in predictions]
    except (TypeError, ValueError):
        raise DetError("results: category_id, score and bbox must be numbers") from None
    imgs = np.concatenate([p[3] for p in parts])
    models = np.concatenate([np.full(len(p[1]), m, np.int64) for m, p in enumerate(parts)])
    # The op takes rows grouped by image (models in order inside each image) and image offsets;
    # numpy's sort here is cheaper than the batch wrapper's threaded torch.unique/argsort.
    order = np.lexsort((models, imgs))
    offsets = np.zeros(len(ids) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum(np.bincount(imgs, minlength=len(ids)))

    def cat(i: int) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(np.concatenate([p[i] for p in parts])[order]))

    w = torch.ones(num_models, dtype=torch.float64) if weights is None else torch.tensor(list(weights), dtype=torch.float64)
    fb, fs, fl, out_off = torch.ops.det.weighted_boxes_fusion(
        cat(0), cat(1), cat(2), torch.from_numpy(models[order]), torch.from_numpy(offsets), w, float(iou_thr),
        float(skip_box_thr), CONF_CODES[conf_type], False)
    fi = torch.repeat_interleave(torch.arange(len(ids)), out_off.diff())
    fb, fs, fl, fi = fb.numpy(), fs.numpy(), fl.numpy(), fi.numpy()
    wh = sizes_wh[fi]
    x1y1 = fb[:, :2] * wh
    out_wh = fb[:, 2:] * wh - x1y1
    xywh = np.concatenate([x1y1, out_wh], axis=1).tolist()
    img_ids = [ids[i] for i in fi.tolist()]
    with _no_gc():  # tens of thousands of new dicts: the cyclic GC would rescan the inputs each time
        return [{"image_id": i, "category_id": c, "bbox": b, "score": s}
                for i, c, b, s in zip(img_ids, fl.tolist(), xywh, fs.tolist())]


@contextlib.contextmanager
def _no_gc() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


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
