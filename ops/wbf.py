"""Weighted boxes fusion (WBF): the ensemble-boxes algorithm, compiled and batched over images.

`weighted_boxes_fusion` keeps ensemble-boxes' list-of-models API for one image;
`weighted_boxes_fusion_batch` fuses many images in one call (images run in parallel).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from det.ops._ext import _C  # noqa: F401  - registers torch.ops.det.*

CONF_TYPES = {"avg": 0, "max": 1, "box_and_model_avg": 2, "absent_model_aware_avg": 3}


def _conf_code(conf_type: str) -> int:
    if conf_type not in CONF_TYPES:
        raise ValueError(f"conf_type must be one of {list(CONF_TYPES)}, got {conf_type!r}")
    return CONF_TYPES[conf_type]


def _weights(weights, num_models: int) -> Tensor:
    if weights is None:
        return torch.ones(num_models, dtype=torch.float64)
    w = torch.as_tensor(np.asarray(weights, dtype=np.float64))
    if w.dim() != 1 or w.numel() != num_models:
        raise ValueError(f"weights must hold one value per model ({num_models}), got {tuple(w.shape)}")
    return w


def _as_tensor(value, dtype: torch.dtype, what: str, model: int) -> Tensor:
    if isinstance(value, Tensor):
        return value.detach().cpu().to(dtype)
    try:
        return torch.as_tensor(np.asarray(value, dtype=np.float64 if dtype.is_floating_point else np.int64))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what}[{model}]: cannot read as numbers ({exc})") from None


def weighted_boxes_fusion(boxes_list: Sequence, scores_list: Sequence, labels_list: Sequence,
                          weights: Sequence[float] | None = None, iou_thr: float = 0.55,
                          skip_box_thr: float = 0.0, conf_type: str = "avg", allows_overflow: bool = False):
    """Fuse the boxes that several models predicted for one image (ensemble-boxes semantics).

    Per label, boxes sorted by score * model weight join the cluster whose fused box overlaps
    them most (IoU > `iou_thr`), else start a new one; a fused box is the score-weighted mean
    of its members. Boxes are clipped to [0, 1] (corners swapped when reversed); zero-area
    boxes and scores below `skip_box_thr` are dropped.

    Args:
        boxes_list: one (N_m, 4) array per model, normalised (x1, y1, x2, y2) in [0, 1].
        scores_list: one (N_m,) array per model.
        labels_list: one (N_m,) array per model (integer labels).
        weights: one weight per model (default: all 1).
        conf_type: 'avg', 'max', 'box_and_model_avg' or 'absent_model_aware_avg'.
        allows_overflow: with 'avg', let a cluster with more boxes than models score above 1.

    Returns:
        boxes (K, 4) float64, scores (K,) float64, labels (K,) int64, sorted by decreasing score;
        torch tensors when the first boxes entry is a tensor, numpy arrays otherwise.
    """
    num_models = len(boxes_list)
    if len(scores_list) != num_models or len(labels_list) != num_models:
        raise ValueError(f"boxes_list, scores_list and labels_list differ in length: "
                         f"{num_models}, {len(scores_list)}, {len(labels_list)}")
    code = _conf_code(conf_type)
    w = _weights(weights, num_models)
    boxes, scores, labels, models = [], [], [], []
    for m in range(num_models):
        b = _as_tensor(boxes_list[m], torch.float64, "boxes_list", m).reshape(-1, 4)
        s = _as_tensor(scores_list[m], torch.float64, "scores_list", m).reshape(-1)
        lab = _as_tensor(labels_list[m], torch.float64, "labels_list", m).reshape(-1).long()
        if not (b.shape[0] == s.shape[0] == lab.shape[0]):
            raise ValueError(f"model {m}: {b.shape[0]} boxes, {s.shape[0]} scores, {lab.shape[0]} labels")
        boxes.append(b)
        scores.append(s)
        labels.append(lab)
        models.append(torch.full((b.shape[0],), m, dtype=torch.int64))
    n = sum(b.shape[0] for b in boxes)
    cat = (lambda xs, shape: torch.cat(xs) if xs else torch.zeros(shape))
    out_b, out_s, out_l, _ = torch.ops.det.weighted_boxes_fusion(
        cat(boxes, (0, 4)).to(torch.float64), cat(scores, (0,)).to(torch.float64),
        cat(labels, (0,)).long(), cat(models, (0,)).long(), torch.tensor([0, n]), w,
        float(iou_thr), float(skip_box_thr), code, bool(allows_overflow))
    if num_models and isinstance(boxes_list[0], Tensor):
        return out_b, out_s, out_l
    return out_b.numpy(), out_s.numpy(), out_l.numpy()


def weighted_boxes_fusion_batch(boxes: Tensor, scores: Tensor, labels: Tensor, image_ids: Tensor,
                                model_ids: Tensor, num_models: int | None = None,
                                weights: Sequence[float] | Tensor | None = None, iou_thr: float = 0.55,
                                skip_box_thr: float = 0.0, conf_type: str = "avg",
                                allows_overflow: bool = False) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """WBF over many images at once: one row per predicted box, tagged with image and model.

    Equivalent to calling :func:`weighted_boxes_fusion` per image with each model's rows in
    their original order, but in one compiled call parallel over images.

    Args:
        boxes: (N, 4) normalised (x1, y1, x2, y2); scores: (N,); labels: (N,) integer.
        image_ids: (N,) integer image of each row (any values).
        model_ids: (N,) integer model of each row, in [0, num_models).
        num_models: number of models (default: max(model_ids) + 1, or len(weights)).
        weights, iou_thr, skip_box_thr, conf_type, allows_overflow: as in weighted_boxes_fusion.

    Returns:
        boxes (K, 4) float64, scores (K,) float64, labels (K,) int64, image_ids (K,) int64;
        grouped by ascending image id, each image's boxes by decreasing score.
    """
    code = _conf_code(conf_type)
    # Bookkeeping in numpy: a handful of single-threaded calls instead of many small torch
    # kernels, each of which may enter a parallel region.
    boxes = _numpy(boxes, np.float64).reshape(-1, 4)
    n = boxes.shape[0]
    scores, labels, image_ids, model_ids = (_numpy(t, d).reshape(-1) for t, d in (
        (scores, np.float64), (labels, np.float64), (image_ids, np.int64), (model_ids, np.int64)))
    for name, t in (("scores", scores), ("labels", labels), ("image_ids", image_ids), ("model_ids", model_ids)):
        if t.shape[0] != n:
            raise ValueError(f"{name} has {t.shape[0]} values, boxes has {n} rows")
    if num_models is None:
        num_models = len(weights) if weights is not None else (int(model_ids.max()) + 1 if n else 1)
    if n and (int(model_ids.min()) < 0 or int(model_ids.max()) >= num_models):
        raise ValueError(f"model_ids must lie in [0, {num_models}), got [{int(model_ids.min())}, {int(model_ids.max())}]")
    w = _weights(weights.tolist() if isinstance(weights, Tensor) else weights, num_models)
    uniq, dense = np.unique(image_ids, return_inverse=True)
    order = np.argsort(dense * num_models + model_ids, kind="stable")
    offsets = np.zeros(uniq.size + 1, dtype=np.int64)
    np.cumsum(np.bincount(dense, minlength=uniq.size), out=offsets[1:])
    out_b, out_s, out_l, out_off = torch.ops.det.weighted_boxes_fusion(
        torch.from_numpy(boxes[order]), torch.from_numpy(scores[order]),
        torch.from_numpy(labels[order].astype(np.int64)), torch.from_numpy(model_ids[order]),
        torch.from_numpy(offsets), w, float(iou_thr), float(skip_box_thr), code, bool(allows_overflow))
    out_img = torch.from_numpy(np.repeat(uniq, np.diff(out_off.numpy())))
    return out_b, out_s, out_l, out_img


def _numpy(value, dtype) -> np.ndarray:
    if isinstance(value, Tensor):
        value = value.detach().cpu().numpy()
    return np.ascontiguousarray(np.asarray(value).astype(dtype, copy=False))


@torch.library.register_fake("det::weighted_boxes_fusion")
def _wbf_fake(boxes, scores, labels, models, image_offsets, weights, iou_thr, skip_box_thr, conf_type,
              allows_overflow):
    k = torch.library.get_ctx().new_dynamic_size()
    return (boxes.new_empty((k, 4), dtype=torch.float64), boxes.new_empty((k,), dtype=torch.float64),
            boxes.new_empty((k,), dtype=torch.int64), image_offsets.new_empty(image_offsets.shape))
