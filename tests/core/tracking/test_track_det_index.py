"""Trackers say which detection of the frame is behind each reported track (no re-matching)."""
from __future__ import annotations

import numpy as np
import pytest

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
