"""Box overlaps and thresholded optimal assignment for trackers."""
from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

from det.core.structures.boxes import box_overlaps

_EMPTY = np.empty(0, dtype=np.int64)


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of (N, 4) and (M, 4) xyxy boxes -> (N, M); an inverted box counts as empty."""
    def proper(boxes: np.ndarray) -> np.ndarray:
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4).copy()
        boxes[:, 2:] = np.maximum(boxes[:, 2:], boxes[:, :2])
        return boxes

    return box_overlaps(proper(a), proper(b), eps=np.finfo(np.float64).tiny)


def linear_assignment(cost: np.ndarray, cost_limit: float,
                      valid: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Minimum-cost matching that only accepts pairs with cost <= cost_limit (and `valid`).

    Returns (matches (K, 2) of row/col indices, unmatched rows, unmatched cols). Pairs above the
    limit are made prohibitively expensive before solving, so the solver never trades a valid
    pair for an invalid one, then dropped.
    """
    cost = np.asarray(cost, dtype=np.float64)
    n, m = cost.shape
    if n == 0 or m == 0:
        return np.empty((0, 2), dtype=np.int64), np.arange(n), np.arange(m)
    valid = (cost <= cost_limit) if valid is None else (valid & (cost <= cost_limit))
    if not valid.any():
        return np.empty((0, 2), dtype=np.int64), np.arange(n), np.arange(m)
    big = 1e6 + np.abs(cost[valid]).max() * (n + m)
    rows, cols = linear_sum_assignment(np.where(valid, cost, big))
    keep = valid[rows, cols]
    rows, cols = rows[keep], cols[keep]
    unmatched_rows = np.setdiff1d(np.arange(n), rows) if len(rows) else np.arange(n)
    unmatched_cols = np.setdiff1d(np.arange(m), cols) if len(cols) else np.arange(m)
    return np.stack([rows, cols], axis=1).astype(np.int64), unmatched_rows, unmatched_cols
