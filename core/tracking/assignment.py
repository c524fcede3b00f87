"""Box overlaps and thresholded optimal assignment for trackers."""
from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

_EMPTY = np.empty(0, dtype=np.int64)


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of (N, 4) and (M, 4) xyxy boxes -> (N, M); empty boxes give 0."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = np.clip(rb - lt, 0, None)
    inter = wh[..., 0] * wh[..., 1]
    area_a = np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1], 0, None)
    area_b = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


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
