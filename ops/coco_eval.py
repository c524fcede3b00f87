"""Compiled COCO evaluation: pycocotools' `COCOeval.evaluate()` + `accumulate()` in one call.

`coco_accumulate` takes ground truths and detections as flat arrays (image and category given as
indices into the evaluated image and category lists) and returns pycocotools' `precision`
(T, R, K, A, M), `recall` (T, K, A, M) and `scores` (T, R, K, A, M), bit-identical to
pycocotools for the same inputs. Box IoU is computed inside; for masks the caller passes
per-image IoU matrices (pycocotools' `maskUtils.iou`, detections x ground truths, both in input
order) and their offsets.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from det.ops._ext import _C  # noqa: F401  - registers torch.ops.det.*


def _t(a, dtype) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(np.asarray(a, dtype=dtype)))


def coco_accumulate(gt_img, gt_cat, gt_box, gt_area, gt_crowd, gt_id, dt_img, dt_cat, dt_box, dt_area, dt_score,
                    num_images: int, num_cats: int, iou_thrs: Sequence[float], rec_thrs: Sequence[float],
                    area_rng: Sequence[Sequence[float]], max_dets: Sequence[int], ious=None,
                    iou_offsets=None, gt_ignore=None, dt_lenient=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """COCOeval precision, recall and scores from flat arrays.

    Args:
        gt_img, gt_cat: (G,) image / category index of each ground truth (0-based, < num_*).
        gt_box: (G, 4) xywh; gt_area: (G,) the annotation's 'area'; gt_crowd: (G,) iscrowd;
        gt_id: (G,) annotation ids (pycocotools treats a match to id 0 as no match).
        gt_ignore: (G,) ignored ground truths (default: the crowds, as pycocotools).
        dt_lenient: (D,) detections ignored when unmatched (default none; LVIS: not-exhaustive classes).
        dt_img, dt_cat, dt_box (xywh), dt_area, dt_score: the same for the D detections.
        ious, iou_offsets: mask IoUs per image (flat), with I + 1 offsets; None for box IoU.
        max_dets: sorted ascending, as pycocotools sorts them.
    Returns:
        precision, recall, scores as float64 numpy arrays.
    """
    dbl, lng = np.float64, np.int64
    empty = torch.zeros(0, dtype=torch.float64)
    out = torch.ops.det.coco_evaluate(
        _t(gt_img, lng), _t(gt_cat, lng), _t(gt_box, dbl).reshape(-1), _t(gt_area, dbl), _t(gt_crowd, lng),
        _t(gt_crowd if gt_ignore is None else gt_ignore, lng), _t(gt_id, lng), _t(dt_img, lng), _t(dt_cat, lng),
        _t(np.zeros(len(dt_img)) if dt_lenient is None else dt_lenient, lng), _t(dt_box, dbl).reshape(-1), _t(dt_area, dbl),
        _t(dt_score, dbl), empty if ious is None else _t(ious, dbl),
        torch.zeros(0, dtype=torch.int64) if iou_offsets is None else _t(iou_offsets, lng),
        int(num_images), int(num_cats), _t(iou_thrs, dbl), _t(rec_thrs, dbl), _t(area_rng, dbl).reshape(-1),
        _t(max_dets, lng))
    return tuple(t.numpy() for t in out)
