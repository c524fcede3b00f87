"""Kalman filter: filterpy parity (fixture computed once by filterpy), box conversions, gating."""
import json
from pathlib import Path

import numpy as np
import pytest

from det.core.tracking.kalman import KalmanFilter, xyah_to_xyxy, xyxy_to_xyah

FIXTURE = Path(__file__).parent / "fixtures" / "kalman_filterpy.json"


def test_matches_filterpy_predictions_and_updates():
    ref = json.loads(FIXTURE.read_text())
    z = np.array(ref["measurements"])
    update = np.array(ref["update"], bool)
    kf = KalmanFilter()
    mean, cov = kf.initiate(z[0])
    np.testing.assert_allclose(mean, ref["mean"][0], rtol=0, atol=1e-9)
    np.testing.assert_allclose(cov, ref["cov"][0], rtol=0, atol=1e-9)
    for s in range(1, len(z)):
        mean, cov = kf.predict(mean, cov)
        np.testing.assert_allclose(mean, ref["pred_mean"][s], rtol=0, atol=1e-9)
        np.testing.assert_allclose(cov, ref["pred_cov"][s], rtol=0, atol=1e-9)
        sel = update[s]
        m, c = kf.update(mean[sel], cov[sel], z[s, sel])
        mean, cov = mean.copy(), cov.copy()
        mean[sel], cov[sel] = m, c
        np.testing.assert_allclose(mean, ref["mean"][s], rtol=0, atol=1e-9)
        np.testing.assert_allclose(cov, ref["cov"][s], rtol=0, atol=1e-9)
    assert not update.all(), "the fixture must include predict-only steps"


def test_batched_equals_one_track_at_a_time():
    rng = np.random.default_rng(0)
    z = np.column_stack([rng.uniform(0, 500, 6), rng.uniform(0, 500, 6), rng.uniform(0.3, 0.8, 6), rng.uniform(20, 200, 6)])
    kf = KalmanFilter()
    mean, cov = kf.predict(*kf.initiate(z))
    zz = z + rng.normal(0, 2, z.shape)
    bm, bc = kf.update(mean, cov, zz)
    for i in range(6):
        m, c = kf.update(mean[i:i + 1], cov[i:i + 1], zz[i:i + 1])
        np.testing.assert_allclose(m[0], bm[i], atol=1e-12)
        np.testing.assert_allclose(c[0], bc[i], atol=1e-12)


def test_constant_velocity_is_learned():
    kf = KalmanFilter()
    box = np.array([[100.0, 100.0, 140.0, 200.0]])
    mean, cov = kf.initiate(xyxy_to_xyah(box))
    for t in range(1, 40):
        mean, cov = kf.predict(mean, cov)
        mean, cov = kf.update(mean, cov, xyxy_to_xyah(box + [3 * t, -2 * t, 3 * t, -2 * t]))
    np.testing.assert_allclose(mean[0, 4:6], [3.0, -2.0], atol=0.05)


def test_box_conversions_round_trip():
    boxes = np.array([[10.0, 20.0, 50.0, 120.0], [0.0, 0.0, 1.0, 3.0]])
    xyah = xyxy_to_xyah(boxes)
    np.testing.assert_allclose(xyah[0], [30, 70, 0.4, 100])
    np.testing.assert_allclose(xyah_to_xyxy(xyah), boxes, atol=1e-12)


def test_gating_distance_is_mahalanobis():
    kf = KalmanFilter()
    mean, cov = kf.predict(*kf.initiate(np.array([[50.0, 60.0, 0.5, 80.0]])))
    z = np.array([[52.0, 58.0, 0.52, 83.0], [50.0, 60.0, 0.5, 80.0]])
    pm, pc = kf.project(mean, cov)
    expected = [float((zz - pm[0]) @ np.linalg.inv(pc[0]) @ (zz - pm[0])) for zz in z]
    np.testing.assert_allclose(kf.gating_distance(mean, cov, z)[0], expected, rtol=1e-10)
    assert kf.gating_distance(mean, cov, z)[0, 1] == pytest.approx(0.0, abs=1e-12)
