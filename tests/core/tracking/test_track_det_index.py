"""Trackers say which detection of the frame is behind each reported track (no re-matching)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from det.core.tracking import TRACKERS


@pytest.mark.parametrize("name", ["SORT", "ByteTrack", "OCSORT"])
def test_reported_tracks_carry_their_detection_index(name):
    tracker = TRACKERS[name]()
    rng = np.random.default_rng(0)
    base = np.array([[10, 10, 50, 60], [100, 20, 140, 90], [200, 200, 260, 250]], dtype=np.float64)
    for frame in range(1, 8):
        order = rng.permutation(3)
        boxes = base[order] + frame * 2.0
        scores = np.array([0.9, 0.85, 0.95])[order]
        rows, index = tracker.update_indexed(frame, boxes, scores)
        assert len(rows) == len(index)
        for row, i in zip(rows, index):
            if i >= 0:
                np.testing.assert_array_equal(row[1:5], boxes[i])  # the very detection, whatever the order
        if frame >= 3:
            assert (index >= 0).all() and len(set(index.tolist())) == len(index) == 3
            ids = {int(r[0]): tuple(np.round(r[1:5] - frame * 2.0)) for r in rows}
            assert sorted(ids.values()) == sorted(tuple(b) for b in base)  # identities follow the objects


@pytest.mark.parametrize("name", ["SORT", "ByteTrack", "OCSORT"])
def test_identical_boxes_keep_their_own_detection(name):
    """Two detections with the same box (two classes after class-aware NMS) back two tracks:
    the index is recorded at assignment, so each track reports its own detection."""
    tracker = TRACKERS[name]()
    box = np.array([[10.0, 10, 50, 60]])
    for frame in range(1, 5):
        boxes = np.concatenate([box, box, box + 200]) + frame
        rows, index = tracker.update_indexed(frame, boxes, np.array([0.9, 0.9, 0.9]))
    assert sorted(index.tolist()) == [0, 1, 2]


def test_track_returns_the_result_type_narrowed_to_tracks():
    from det.core.inference.prediction import Prediction
    from det.core.structures import Instances

    tracker = TRACKERS["ByteTrack"]()
    boxes = np.array([[10.0, 10, 50, 60], [100, 20, 140, 90], [0, 0, 5, 5]])
    for frame in range(1, 4):
        dets = Instances(bboxes=torch.from_numpy(boxes + frame).float(), labels=torch.tensor([3, 1, 2]),
                         scores=torch.tensor([0.9, 0.8, 0.05]))  # the last is below every threshold
        out = tracker.track(frame, dets)
    assert isinstance(out, Instances) and isinstance(out.track_ids, torch.Tensor) and len(out) == 2
    by_label = dict(zip(out.labels.tolist(), out.bboxes.tolist()))
    assert by_label == {3: (boxes[0] + 3).tolist(), 1: (boxes[1] + 3).tolist()}  # class follows its detection
    pred = Prediction(bboxes=(boxes + 4).astype(np.float32), labels=np.array([3, 1, 2]),
                      scores=np.array([0.9, 0.8, 0.05], np.float32), class_names=["c", "a", "b"])
    out = tracker.track(4, pred)
    assert isinstance(out, Prediction) and sorted(out.class_names) == ["a", "c"] and out.track_ids.dtype == np.int64
