"""Multi-object tracking: Kalman filter, SORT, ByteTrack, OC-SORT, MOTChallenge files,
synthetic sequences and the tracker parameter search.

`run_tracker(tracker_cfg, detections_per_frame)` is the entry point other commands use.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from det.core.config import build
from det.core.tracking.base import BaseTracker
from det.core.tracking.bytetrack import ByteTrack
from det.core.tracking.kalman import KalmanFilter
from det.core.tracking.ocsort import OCSORT
from det.core.tracking.sort import SORT

# The explicit table of tracker components (`tracker: {type: ByteTrack, ...}` in a preset).
TRACKERS = {"SORT": SORT, "ByteTrack": ByteTrack, "OCSORT": OCSORT}


def build_tracker(cfg: Mapping[str, Any] | BaseTracker) -> BaseTracker:
    """A tracker from its preset section (errors name `tracker.<key>`)."""
    if isinstance(cfg, BaseTracker):
        return cfg
    return build(dict(cfg), TRACKERS, "tracker")


def run_tracker(tracker_cfg: Mapping[str, Any] | BaseTracker,
                detections_per_frame: Mapping[int, np.ndarray] | Sequence[np.ndarray],
                num_frames: int | None = None) -> np.ndarray:
    """Track one sequence.

    `detections_per_frame`: a mapping frame id (1-based) -> (N, 5) array x1, y1, x2, y2, score,
    or a sequence whose item i holds frame i + 1. Frames missing from a mapping are empty;
    `num_frames` extends the sequence past the last frame with detections.
    Returns (K, 7) float rows `frame, id, x, y, w, h, score` (MOTChallenge layout, box as xywh).
    """
    tracker = build_tracker(tracker_cfg)
    tracker.reset()
    if isinstance(detections_per_frame, Mapping):
        last = max([int(k) for k in detections_per_frame] + [num_frames or 0])
        frames = [(f, detections_per_frame.get(f)) for f in range(1, last + 1)]
    else:
        frames = list(enumerate(detections_per_frame, start=1))
        if num_frames:
            frames += [(f, None) for f in range(len(frames) + 1, num_frames + 1)]
    rows = []
    for frame_id, dets in frames:
        dets = np.empty((0, 5)) if dets is None else np.asarray(dets, dtype=np.float64).reshape(-1, 5)
        out = tracker.update(frame_id, dets[:, :4], dets[:, 4])
        if len(out):
            rows.append(np.column_stack([np.full(len(out), frame_id), out[:, 0], out[:, 1], out[:, 2],
                                         out[:, 3] - out[:, 1], out[:, 4] - out[:, 2], out[:, 5]]))
    return np.concatenate(rows) if rows else np.empty((0, 7))


__all__ = ["TRACKERS", "BaseTracker", "ByteTrack", "KalmanFilter", "OCSORT", "SORT", "build_tracker", "run_tracker"]
