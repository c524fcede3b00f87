"""OC-SORT (Cao et al. 2023): SORT made robust to occlusion by trusting observations over
the Kalman state.

- Observation-centric momentum (OCM): the association cost adds the agreement between a
  track's observed motion direction (from the observation `vel_delta_t` frames back to the
  latest) and the direction towards each detection, weighted by `vel_consist_weight`.
- Observation-centric recovery (OCR): tracks left unmatched are tried once more against the
  remaining detections using their last observed box instead of the drifting prediction.
- Observation-centric re-update (ORU): when a lost track is matched again, its Kalman state is
  rolled back to the last observation and re-run over a virtual trajectory linearly
  interpolated between that observation and the new one, removing the error accumulated
  while it was unobserved.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from det.core.tracking.assignment import iou_matrix, linear_assignment
from det.core.tracking.base import CONFIRMED, TENTATIVE, BaseTracker, Track, last_boxes, predicted_boxes
from det.core.tracking.kalman import xyxy_to_xyah


def _centres(boxes: np.ndarray) -> np.ndarray:
    return np.stack([(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2], axis=1)


class OCSORT(BaseTracker):
    """OC-SORT with the parameters of MMDetection's OCSORTTracker (see the module docstring)."""

    def __init__(self, motion: Mapping | None = None, obj_score_thr: float = 0.3, init_track_thr: float = 0.7,
                 weight_iou_with_det_scores: bool = True, match_iou_thr: float = 0.3, num_tentatives: int = 3,
                 vel_consist_weight: float = 0.2, vel_delta_t: int = 3, num_frames_retain: int = 30) -> None:
        super().__init__(motion, num_frames_retain, obj_score_thr, match_iou_thr, num_tentatives, init_track_thr,
                         weight_iou_with_det_scores)
        self.vel_consist_weight = float(vel_consist_weight)
        self.vel_delta_t = int(vel_delta_t)

    def _previous_obs(self, t: Track, frame_id: int) -> np.ndarray:
        """The observation `vel_delta_t` frames before `frame_id` (or the closest later one
        within that window), else the last observation."""
        for dt in range(self.vel_delta_t, 0, -1):
            box = t.observations.get(frame_id - dt)
            if box is not None:
                return box
        return t.box

    def _velocity(self, t: Track) -> np.ndarray:
        """Unit direction of the observed motion ending at the last observation (0 if unknown)."""
        prev = self._previous_obs(t, t.last_frame)
        d = _centres(t.box[None])[0] - _centres(prev[None])[0]
        n = np.hypot(*d)
        return d / n if n > 1e-6 else np.zeros(2)

    def _ocm_cost(self, tracks: list[Track], boxes: np.ndarray, scores: np.ndarray,
                  frame_id: int) -> tuple[np.ndarray, np.ndarray]:
        ious = iou_matrix(predicted_boxes(tracks), boxes)
        sim = ious * scores[None, :] if self.weight_iou_with_det_scores else ious.copy()
        if len(tracks) and len(boxes):
            vel = np.stack([self._velocity(t) for t in tracks])  # (T, 2)
            prev = np.stack([self._previous_obs(t, frame_id) for t in tracks])
            d = _centres(boxes)[None, :, :] - _centres(prev)[:, None, :]  # (T, D, 2)
            d = d / (np.linalg.norm(d, axis=2, keepdims=True) + 1e-6)
            cos = np.clip(np.einsum("tk,tdk->td", vel, d), -1.0, 1.0)
            angle_cost = (np.pi / 2 - np.abs(np.arccos(cos))) / np.pi
            known = np.linalg.norm(vel, axis=1) > 0
            sim = sim + self.vel_consist_weight * angle_cost * scores[None, :] * known[:, None]
        return 1.0 - sim, ious

    def _reupdate(self, t: Track, box: np.ndarray, frame_id: int) -> None:
        """ORU: replay the gap with interpolated virtual observations from the saved state."""
        gap = frame_id - t.last_frame
        if gap <= 1 or t.saved is None:
            return
        mean, cov = t.saved[0][None], t.saved[1][None]
        start = t.box
        for k in range(1, gap):
            mean, cov = self.motion.predict(mean, cov)
            virtual = start + (box - start) * (k / gap)
            mean, cov = self.motion.update(mean, cov, xyxy_to_xyah(virtual[None]))
        mean, cov = self.motion.predict(mean, cov)
        t.mean, t.cov = mean[0], cov[0]

    def _match(self, tracks: list[Track], boxes: np.ndarray, scores: np.ndarray, idx: np.ndarray, frame_id: int,
               matches: np.ndarray) -> None:
        chosen = [tracks[i] for i in matches[:, 0]]
        det = idx[matches[:, 1]]
        for t, j in zip(chosen, det):
            self._reupdate(t, boxes[j], frame_id)
        self.correct(chosen, det, frame_id)

    def _step(self, frame_id: int, boxes: np.ndarray, scores: np.ndarray) -> list[Track]:
        idx = np.flatnonzero(scores > self.obj_score_thr)
        self.predict(self.tracks)
        confirmed = [t for t in self.tracks if t.state == CONFIRMED]
        tentative = [t for t in self.tracks if t.state == TENTATIVE]
        limit = 1.0 - self.match_iou_thr

        # 1. OCM association of confirmed tracks
        cost, ious = self._ocm_cost(confirmed, boxes[idx], scores[idx], frame_id)
        m1, um_tracks, um_dets = linear_assignment(cost, np.inf, valid=ious >= self.match_iou_thr)
        self._match(confirmed, boxes, scores, idx, frame_id, m1)
        left = idx[um_dets]

        # 2. tentative tracks by IoU with their prediction
        ious = iou_matrix(predicted_boxes(tentative), boxes[left])
        m2, _, um_left = linear_assignment(1.0 - ious, limit)
        matched_tent = [tentative[i] for i in m2[:, 0]]
        self.correct(matched_tent, left[m2[:, 1]], frame_id)
        for t in matched_tent:
            if t.hits >= self.num_tentatives:
                t.state = CONFIRMED
        left = left[um_left]

        # 3. OCR: unmatched confirmed tracks by their last observation
        rest = [confirmed[i] for i in um_tracks]
        ious = iou_matrix(last_boxes(rest), boxes[left])
        m3, _, um_left = linear_assignment(1.0 - ious, limit)
        self._match(rest, boxes, scores, left, frame_id, m3)
        left = left[um_left]

        self.tracks = [t for t in self.tracks if t.state == CONFIRMED or t.last_frame == frame_id]
        fresh = left[scores[left] > self.init_track_thr]
        first = frame_id == self.first_frame or self.num_tentatives <= 1
        self.new_tracks(fresh, frame_id, confirmed=first)
        self.drop_stale(frame_id)
        return [t for t in self.tracks if t.state == CONFIRMED and t.last_frame == frame_id]
