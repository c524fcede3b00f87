"""ByteTrack (Zhang et al. 2022): associate every detection box, high scores first, then
low-score boxes to the tracks the first stage left, so occluded targets keep their ids."""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from det.core.tracking.assignment import iou_matrix, linear_assignment
from det.core.tracking.base import CONFIRMED, TENTATIVE, BaseTracker, Track, predicted_boxes


class ByteTrack(BaseTracker):
    """Stages per frame (after a Kalman prediction of every track):

    1. confirmed tracks (tracked or lost for at most `num_frames_retain` frames) against
       detections with score > `obj_score_thr`, IoU (times the detection score when
       `weight_iou_with_det_scores`) >= `match_iou_thr`;
    2. confirmed tracks still unmatched that were tracked in the previous frame against the
       low-score detections (`low_score_thr` < score <= `obj_score_thr`), IoU >= `low_match_iou_thr`;
    3. tentative tracks against the remaining high-score detections, IoU >= `tentative_match_iou_thr`;
       a tentative track is confirmed after `num_tentatives` hits and dropped when it misses a frame;
    4. remaining high-score detections with score > `init_track_thr` start tentative tracks
       (confirmed at once in the first frame of a sequence).
    Reported: the confirmed tracks matched in this frame, with their detection box and score.
    """

    def __init__(self, motion: Mapping | None = None, obj_score_thr: float = 0.6, low_score_thr: float = 0.1,
                 init_track_thr: float = 0.7, match_iou_thr: float = 0.1, low_match_iou_thr: float = 0.5,
                 tentative_match_iou_thr: float = 0.3, weight_iou_with_det_scores: bool = True,
                 num_tentatives: int = 3, num_frames_retain: int = 30) -> None:
        super().__init__(motion, num_frames_retain, obj_score_thr, match_iou_thr, num_tentatives, init_track_thr,
                         weight_iou_with_det_scores)
        self.low_score_thr = float(low_score_thr)
        self.low_match_iou_thr = float(low_match_iou_thr)
        self.tentative_match_iou_thr = float(tentative_match_iou_thr)

    def _cost(self, tracks: list[Track], boxes: np.ndarray, scores: np.ndarray, weight: bool) -> np.ndarray:
        sim = iou_matrix(predicted_boxes(tracks), boxes)
        if weight:
            sim = sim * scores[None, :]
        return 1.0 - sim

    def _step(self, frame_id: int, boxes: np.ndarray, scores: np.ndarray) -> list[Track]:
        high = scores > self.obj_score_thr
        low = (scores > self.low_score_thr) & ~high
        hi_idx, lo_idx = np.flatnonzero(high), np.flatnonzero(low)

        self.predict(self.tracks, freeze_lost_height=True, frame_id=frame_id)
        confirmed = [t for t in self.tracks if t.state == CONFIRMED]
        tentative = [t for t in self.tracks if t.state == TENTATIVE]

        # 1. confirmed (incl. lost) tracks vs high-score detections
        cost = self._cost(confirmed, boxes[hi_idx], scores[hi_idx], self.weight_iou_with_det_scores)
        m1, um_tracks, um_hi = linear_assignment(cost, 1.0 - self.match_iou_thr)
        self.correct([confirmed[i] for i in m1[:, 0]], hi_idx[m1[:, 1]], frame_id)

        # 2. tracks tracked in the previous frame vs low-score detections (plain IoU)
        rest = [confirmed[i] for i in um_tracks if confirmed[i].last_frame == frame_id - 1]
        cost = self._cost(rest, boxes[lo_idx], scores[lo_idx], False)
        m2, _, _ = linear_assignment(cost, 1.0 - self.low_match_iou_thr)
        self.correct([rest[i] for i in m2[:, 0]], lo_idx[m2[:, 1]], frame_id)

        # 3. tentative tracks vs the high-score detections left over
        left = hi_idx[um_hi]
        cost = self._cost(tentative, boxes[left], scores[left], self.weight_iou_with_det_scores)
        m3, _, um_left = linear_assignment(cost, 1.0 - self.tentative_match_iou_thr)
        matched_tent = [tentative[i] for i in m3[:, 0]]
        self.correct(matched_tent, left[m3[:, 1]], frame_id)
        for t in matched_tent:
            if t.hits >= self.num_tentatives:
                t.state = CONFIRMED
        # a tentative track that misses a frame was probably a false positive
        self.tracks = [t for t in self.tracks if t.state == CONFIRMED or t.last_frame == frame_id]

        # 4. new tracks
        fresh = left[um_left]
        fresh = fresh[scores[fresh] > self.init_track_thr]
        first = frame_id == self.first_frame or self.num_tentatives <= 1
        self.new_tracks(fresh, frame_id, confirmed=first)

        self.drop_stale(frame_id)
        return [t for t in self.tracks if t.state == CONFIRMED and t.last_frame == frame_id]
