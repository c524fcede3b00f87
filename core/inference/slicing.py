"""Sliced inference for images much larger than the network input.

The image is cut into overlapping square tiles; each tile (and, unless disabled, the whole image,
which the test pipeline downscales) goes through the detector; tile boxes are shifted back into
image pixels and everything is merged with det.ops (class-aware NMS or weighted boxes fusion).

Objects cut by a tile border produce partial boxes that overlap the whole box far less than any
useful IoU threshold (half an object has IoU 0.5 with the whole). So before NMS/WBF, a box that
touches an inner tile border ("cut") is dropped when most of it lies inside an uncut box of the
same class found elsewhere (intersection over the cut box's area >= `contain_thr`), and cut
pieces of one object seen by neighbouring tiles (larger than the overlap, so cut in every tile)
are joined into their union. This is the reason for own code here rather than NMS alone.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from det.core.errors import DetError
from det.core.inference.prediction import Prediction
from det.core.structures.boxes import box_overlaps

MERGE_METHODS = ("nms", "wbf")


def tile_starts(length: int, size: int, step: int) -> list[int]:
    """Start offsets of windows of `size` covering [0, length); the last window ends at `length`."""
    if length <= size:
        return [0]
    starts = list(range(0, length - size, step))
    starts.append(length - size)
    return sorted(set(starts))


def tile_windows(height: int, width: int, size: int, overlap: float) -> list[tuple[int, int, int, int]]:
    """Tiles (x0, y0, x1, y1) of at most size x size pixels overlapping by `overlap` (0 <= r < 1)."""
    if size <= 0:
        raise DetError(f"--slice: tile size must be positive, got {size}")
    if not 0.0 <= overlap < 1.0:
        raise DetError(f"--overlap: must be in [0, 1), got {overlap}")
    step = max(1, int(round(size * (1.0 - overlap))))
    return [(x, y, min(x + size, width), min(y + size, height))
            for y in tile_starts(height, size, step) for x in tile_starts(width, size, step)]


@dataclass
class _Candidates:
    boxes: np.ndarray  # (N, 4) image pixels
    scores: np.ndarray
    labels: np.ndarray
    cut: np.ndarray  # (N,) bool: touches an inner tile border
    masks: list  # per box: None or (x0, y0, bool crop) to paste into the image


def _cut_flags(boxes: np.ndarray, win: tuple[int, int, int, int], height: int, width: int, margin: float) -> np.ndarray:
    x0, y0, x1, y1 = win
    tw, th = x1 - x0, y1 - y0
    cut = np.zeros(len(boxes), bool)
    if x0 > 0:
        cut |= boxes[:, 0] <= margin
    if y0 > 0:
        cut |= boxes[:, 1] <= margin
    if x1 < width:
        cut |= boxes[:, 2] >= tw - margin
    if y1 < height:
        cut |= boxes[:, 3] >= th - margin
    return cut


def resolve_cut_boxes(c: _Candidates, contain_thr: float) -> _Candidates:
    """Drop cut boxes mostly inside an uncut same-class box; join the remaining cut pieces of
    one object (same class, one mostly inside the other's extension) into their union."""
    if not c.cut.any():
        return c
    cut_idx = np.flatnonzero(c.cut)
    whole_idx = np.flatnonzero(~c.cut)
    keep = np.ones(len(c.boxes), bool)
    if len(whole_idx):
        ios = box_overlaps(c.boxes[cut_idx], c.boxes[whole_idx], "iof")
        same = c.labels[cut_idx][:, None] == c.labels[whole_idx][None, :]
        keep[cut_idx[((ios >= contain_thr) & same).any(1)]] = False
    rest = cut_idx[keep[cut_idx]]
    if len(rest) < 2:
        return _select(c, keep)
    # Union-find over overlapping cut pieces of the same class (intersection over the smaller).
    boxes = c.boxes[rest]
    iof = box_overlaps(boxes, boxes, "iof")
    ios = np.maximum(iof, iof.T)  # intersection over the smaller area
    link = (ios >= contain_thr) & (c.labels[rest][:, None] == c.labels[rest][None, :])
    parent = list(range(len(rest)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in zip(*np.nonzero(np.triu(link, 1))):
        parent[find(int(i))] = find(int(j))
    groups: dict[int, list[int]] = {}
    for i in range(len(rest)):
        groups.setdefault(find(i), []).append(i)
    boxes_out, masks_out = c.boxes.copy(), list(c.masks)
    for members in groups.values():
        if len(members) < 2:
            continue
        idx = rest[members]
        best = idx[np.argmax(c.scores[idx])]
        boxes_out[best] = [c.boxes[idx, 0].min(), c.boxes[idx, 1].min(), c.boxes[idx, 2].max(), c.boxes[idx, 3].max()]
        masks_out[best] = _union_masks([c.masks[i] for i in idx])
        keep[idx] = False
        keep[best] = True
    merged = _Candidates(boxes_out, c.scores, c.labels, c.cut, masks_out)
    return _select(merged, keep)


def _union_masks(parts: list) -> tuple[int, int, np.ndarray] | None:
    if any(p is None for p in parts):
        return None
    x0 = min(p[0] for p in parts)
    y0 = min(p[1] for p in parts)
    x1 = max(p[0] + p[2].shape[1] for p in parts)
    y1 = max(p[1] + p[2].shape[0] for p in parts)
    canvas = np.zeros((y1 - y0, x1 - x0), bool)
    for px, py, m in parts:
        canvas[py - y0:py - y0 + m.shape[0], px - x0:px - x0 + m.shape[1]] |= m
    return x0, y0, canvas


def _select(c: _Candidates, keep: np.ndarray) -> _Candidates:
    idx = np.flatnonzero(keep)
    return _Candidates(c.boxes[idx], c.scores[idx], c.labels[idx], c.cut[idx], [c.masks[i] for i in idx])


def merge_boxes(boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray, method: str, iou: float,
                height: int, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Class-aware merging with det.ops: NMS keeps the best box of each cluster, WBF averages the
    cluster's boxes weighted by score. Returns (boxes, scores, labels)."""
    import torch

    from det import ops

    if len(boxes) == 0:
        return boxes, scores, labels
    if method == "nms":
        keep = ops.batched_nms(torch.from_numpy(boxes).float(), torch.from_numpy(scores).float(),
                               torch.from_numpy(labels), float(iou)).numpy()
        return boxes[keep], scores[keep], labels[keep]
    if method == "wbf":
        # ensemble-boxes semantics: normalised coordinates, one "model" holding every tile's boxes
        scale = np.array([width, height, width, height], np.float64)
        fb, fs, fl = ops.weighted_boxes_fusion([boxes.astype(np.float64) / scale], [scores.astype(np.float64)],
                                               [labels.astype(np.int64)], iou_thr=float(iou), conf_type="avg")
        return (np.asarray(fb) * scale).astype(np.float32).reshape(-1, 4), np.asarray(fs, np.float32), np.asarray(fl, np.int64)
    raise DetError(f"--merge: unknown method '{method}' (one of: {', '.join(MERGE_METHODS)})")


def slice_predict(image: np.ndarray, predict: Callable[[list[np.ndarray]], Sequence[Prediction]], size: int,
                  overlap: float = 0.2, merge: str = "nms", merge_iou: float = 0.5, full: bool = True,
                  contain_thr: float = 0.6, edge_margin: float = 2.0, batch_size: int = 4,
                  img_path: str = "", class_names: Sequence[str] = ()) -> Prediction:
    """Detect on tiles (+ the whole image unless `full=False`) and merge into one Prediction.

    `predict(list of BGR arrays) -> list[Prediction]` in the pixels of each array it was given.
    """
    if merge not in MERGE_METHODS:
        raise DetError(f"--merge: unknown method '{merge}' (one of: {', '.join(MERGE_METHODS)})")
    height, width = image.shape[:2]
    windows = tile_windows(height, width, size, overlap)
    parts: list[_Candidates] = []
    for start in range(0, len(windows), max(1, batch_size)):
        chunk = windows[start:start + batch_size]
        preds = predict([image[y0:y1, x0:x1] for x0, y0, x1, y1 in chunk])
        for win, pred in zip(chunk, preds):
            x0, y0 = win[0], win[1]
            boxes = pred.bboxes.astype(np.float32).reshape(-1, 4)
            masks = [None] * len(boxes) if pred.masks is None else [(x0, y0, m) for m in pred.masks]
            parts.append(_Candidates(boxes + np.array([x0, y0, x0, y0], np.float32), pred.scores.astype(np.float32),
                                     pred.labels.astype(np.int64), _cut_flags(boxes, win, height, width, edge_margin), masks))
    if full and len(windows) > 1:
        pred = predict([image])[0]
        masks = [None] * len(pred) if pred.masks is None else [(0, 0, m) for m in pred.masks]
        parts.append(_Candidates(pred.bboxes.astype(np.float32).reshape(-1, 4), pred.scores.astype(np.float32),
                                 pred.labels.astype(np.int64), np.zeros(len(pred), bool), masks))
    cand = _Candidates(np.concatenate([p.boxes for p in parts]), np.concatenate([p.scores for p in parts]),
                       np.concatenate([p.labels for p in parts]), np.concatenate([p.cut for p in parts]),
                       [m for p in parts for m in p.masks])
    cand = resolve_cut_boxes(cand, contain_thr)
    boxes, scores, labels = merge_boxes(cand.boxes, cand.scores, cand.labels, merge, merge_iou, height, width)
    order = np.argsort(-scores, kind="stable")
    boxes, scores, labels = boxes[order], scores[order], labels[order]
    masks = _final_masks(cand, boxes, labels, height, width)
    names = [class_names[int(i)] if 0 <= int(i) < len(class_names) else str(int(i)) for i in labels]
    return Prediction(img_path=img_path, height=height, width=width, bboxes=boxes, scores=scores,
                      labels=labels, class_names=names, masks=masks)


def _final_masks(cand: _Candidates, boxes: np.ndarray, labels: np.ndarray, height: int, width: int) -> np.ndarray | None:
    """Each merged box takes the mask of the same-class candidate it overlaps most (for NMS:
    itself), pasted into a full-size bitmap."""
    if not cand.masks or any(m is None for m in cand.masks):
        return None
    out = np.zeros((len(boxes), height, width), bool)
    if len(boxes) == 0:
        return out
    iou = box_overlaps(boxes, cand.boxes)
    iou[labels[:, None] != cand.labels[None, :]] = -1
    for i, j in enumerate(iou.argmax(1)):
        x0, y0, m = cand.masks[j]
        h = min(m.shape[0], height - y0)
        w = min(m.shape[1], width - x0)
        out[i, y0:y0 + h, x0:x0 + w] = m[:h, :w]
    return out
