"""Track records and the tracker interface shared by SORT, ByteTrack and OC-SORT.

A tracker is fed one frame at a time: `update(frame_id, boxes, scores)` with (N, 4) xyxy boxes
and (N,) scores, and returns the tracks reported for that frame as (K, 6) rows
`id, x1, y1, x2, y2, score`. `reset()` starts a new sequence.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from det.core.config import build
from det.core.errors import ConfigError
from det.core.tracking.kalman import MOTIONS, KalmanFilter, xyah_to_xyxy, xyxy_to_xyah

TENTATIVE, CONFIRMED = "tentative", "confirmed"


@dataclass
class Track:
    """One target: Kalman state plus the bookkeeping the association stages need."""

    track_id: int
    mean: np.ndarray  # (8,)
    cov: np.ndarray  # (8, 8)
    box: np.ndarray  # last observed xyxy box
    score: float
    start_frame: int
    last_frame: int  # frame of the last matched observation
    state: str = TENTATIVE
    hits: int = 1  # total matched observations
    hit_streak: int = 1  # consecutive matched frames up to last_frame
    observations: dict[int, np.ndarray] = field(default_factory=dict)
    saved: tuple[np.ndarray, np.ndarray] | None = None  # Kalman state right after the last update
    det_index: int = -1  # the index, in its frame, of the last detection matched to this track

    def predicted_box(self) -> np.ndarray:
        return xyah_to_xyxy(self.mean[None])[0]


class BaseTracker(ABC):
    """Holds tracks, a motion model and the output format; subclasses implement `_step`."""

    def __init__(self, motion: Mapping | None = None, num_frames_retain: int = 30, obj_score_thr: float = 0.5,
                 match_iou_thr: float = 0.3, num_tentatives: int = 3, init_track_thr: float = 0.7,
                 weight_iou_with_det_scores: bool = False) -> None:
        """The settings every tracker has (each subclass keeps MMDetection's defaults)."""
        self.motion: KalmanFilter = build(dict(motion or {"type": "KalmanFilter"}), MOTIONS, "motion")
        if int(num_frames_retain) < 0:
            raise ConfigError("tracker.num_frames_retain: must be >= 0")
        self.num_frames_retain = int(num_frames_retain)
        self.obj_score_thr, self.match_iou_thr = float(obj_score_thr), float(match_iou_thr)
        self.num_tentatives, self.init_track_thr = int(num_tentatives), float(init_track_thr)
        self.weight_iou_with_det_scores = bool(weight_iou_with_det_scores)
        self.reset()

    def reset(self) -> None:
        self.tracks: list[Track] = []
        self.next_id = 1
        self.first_frame: int | None = None
        self._reported: list[Track] = []

    # -- helpers shared by the subclasses ---------------------------------------------------
    def predict(self, tracks: list[Track], freeze_lost_height: bool = False, frame_id: int = 0) -> None:
        """Advance every given track one frame with the motion model (one batched call)."""
        if not tracks:
            return
        mean = np.stack([t.mean for t in tracks])
        cov = np.stack([t.cov for t in tracks])
        if freeze_lost_height:
            # ByteTrack: a track not seen in the previous frame stops changing its height.
            lost = np.array([t.last_frame < frame_id - 1 for t in tracks])
            mean[lost, 7] = 0.0
        mean, cov = self.motion.predict(mean, cov)
        for i, t in enumerate(tracks):
            t.mean, t.cov = mean[i], cov[i]

    def correct(self, tracks: list[Track], det: np.ndarray, frame_id: int) -> None:
        """Kalman update of `tracks` with this frame's detections `det` (indices into the frame's
        boxes, one per track); bookkeeping of hits, frames and the detection index."""
        if not tracks:
            return
        boxes, scores = self.frame_boxes[det], self.frame_scores[det]
        mean = np.stack([t.mean for t in tracks])
        cov = np.stack([t.cov for t in tracks])
        mean, cov = self.motion.update(mean, cov, xyxy_to_xyah(boxes))
        for i, t in enumerate(tracks):
            t.hit_streak = t.hit_streak + 1 if t.last_frame == frame_id - 1 else 1
            t.mean, t.cov = mean[i], cov[i]
            t.box = np.asarray(boxes[i], dtype=np.float64)
            t.score = float(scores[i])
            t.last_frame = frame_id
            t.hits += 1
            t.observations[frame_id] = t.box
            t.saved = (t.mean.copy(), t.cov.copy())
            t.det_index = int(det[i])

    def new_tracks(self, det: np.ndarray, frame_id: int, confirmed: bool) -> list[Track]:
        """New tracks from this frame's detections `det` (indices into the frame's boxes)."""
        if len(det) == 0:
            return []
        boxes, scores = self.frame_boxes[det], self.frame_scores[det]
        mean, cov = self.motion.initiate(xyxy_to_xyah(boxes))
        made = []
        for i in range(len(boxes)):
            t = Track(self.next_id, mean[i], cov[i], boxes[i].copy(), float(scores[i]), frame_id, frame_id,
                      CONFIRMED if confirmed else TENTATIVE)
            t.observations[frame_id] = t.box
            t.saved = (mean[i].copy(), cov[i].copy())
            t.det_index = int(det[i])
            self.next_id += 1
            made.append(t)
        self.tracks.extend(made)
        return made

    def drop_stale(self, frame_id: int) -> None:
        """Forget tracks unseen for more than num_frames_retain frames."""
        self.tracks = [t for t in self.tracks if frame_id - t.last_frame <= self.num_frames_retain]

    # -- the public interface -----------------------------------------------------------------
    def update(self, frame_id: int, boxes: np.ndarray, scores: np.ndarray) -> np.ndarray:
        """Associate one frame's detections; (K, 6) rows id, x1, y1, x2, y2, score."""
        return self.update_indexed(frame_id, boxes, scores)[0]

    def update_indexed(self, frame_id: int, boxes: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """`update`, plus for each reported track the index of this frame's detection behind it
        (-1 for a track reported without one): recorded when the detection was assigned to the
        track, not found again afterwards."""
        rows = self._update(frame_id, boxes, scores)
        index = np.array([t.det_index if t.last_frame == frame_id else -1 for t in self._reported], np.int64)
        return rows, index

    def track(self, frame_id: int, dets: Any) -> Any:
        """One frame's detections (an `Instances` / `Prediction`, torch or numpy) -> the same
        type narrowed to the tracked instances, in the tracker's order, each with its track id
        and the track's box and score (class, mask and the rest come from its detection)."""
        view = dets.numpy()
        scores = view.scores if view.scores is not None else np.ones(len(view))
        rows, index = self.update_indexed(frame_id, view.bboxes, scores)
        seen = index >= 0
        out = dets[index[seen]]
        ids = rows[seen, 0].astype(np.int64)
        out.track_ids = torch.from_numpy(ids).to(dets.bboxes.device) if isinstance(dets.bboxes, torch.Tensor) else ids
        return out

    def _update(self, frame_id: int, boxes: np.ndarray, scores: np.ndarray) -> np.ndarray:
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        scores = np.asarray(scores, dtype=np.float64).reshape(-1)
        if len(boxes) != len(scores):
            raise ValueError(f"{len(boxes)} boxes but {len(scores)} scores")
        if self.first_frame is None:
            self.first_frame = frame_id
        self.frame_boxes, self.frame_scores = boxes, scores
        reported = self._reported = self._step(frame_id, boxes, scores)
        if not reported:
            return np.empty((0, 6))
        return np.array([[t.track_id, *t.box, t.score] for t in reported], dtype=np.float64)

    @abstractmethod
    def _step(self, frame_id: int, boxes: np.ndarray, scores: np.ndarray) -> list[Track]:
        """Associate this frame's detections; return the tracks to report for it."""


def predicted_boxes(tracks: list[Track]) -> np.ndarray:
    if not tracks:
        return np.empty((0, 4))
    return xyah_to_xyxy(np.stack([t.mean for t in tracks]))


def last_boxes(tracks: list[Track]) -> np.ndarray:
    if not tracks:
        return np.empty((0, 4))
    return np.stack([t.box for t in tracks])
