"""SORT (Bewley et al. 2016): Kalman prediction + IoU Hungarian matching, nothing else."""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from det.core.tracking.assignment import iou_matrix, linear_assignment
from det.core.tracking.base import CONFIRMED, BaseTracker, Track, predicted_boxes


class SORT(BaseTracker):
    """Detections above `obj_score_thr` are matched to predicted tracks by IoU
    (>= `match_iou_thr`); unmatched detections start tracks; a track is reported once it has
    `num_tentatives` consecutive hits (or from the first frames of the sequence) and is
    forgotten after `num_frames_retain` frames without a match (SORT's max_age)."""

    def __init__(self, motion: Mapping | None = None, obj_score_thr: float = 0.5, match_iou_thr: float = 0.3,
                 num_tentatives: int = 3, num_frames_retain: int = 1) -> None:
        super().__init__(motion, num_frames_retain, obj_score_thr, match_iou_thr, num_tentatives)

    def _step(self, frame_id: int, boxes: np.ndarray, scores: np.ndarray) -> list[Track]:
        keep = np.flatnonzero(scores > self.obj_score_thr)
        tracks = self.tracks
        self.predict(tracks)
        ious = iou_matrix(predicted_boxes(tracks), boxes[keep])
        matches, _, unmatched_dets = linear_assignment(1.0 - ious, 1.0 - self.match_iou_thr)
        matched = [tracks[i] for i in matches[:, 0]]
        self.correct(matched, keep[matches[:, 1]], frame_id)
        early = frame_id - self.first_frame < self.num_tentatives
        self.new_tracks(keep[unmatched_dets], frame_id, confirmed=False)
        self.drop_stale(frame_id)
        reported = []
        for t in self.tracks:
            if t.last_frame != frame_id:
                continue
            if t.hit_streak >= self.num_tentatives or early:
                t.state = CONFIRMED
            if t.state == CONFIRMED:
                reported.append(t)
        return reported
