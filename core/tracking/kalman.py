"""Constant-velocity Kalman filter on (cx, cy, aspect, height) boxes, batched over tracks.

State: (cx, cy, a, h, vcx, vcy, va, vh) with a = w / h. Noise follows the DeepSORT/ByteTrack
convention: standard deviations proportional to the box height (position weight 1/20,
velocity weight 1/160), tiny fixed noise on the aspect ratio.
All methods take and return arrays with a leading track axis: means (N, 8), covariances
(N, 8, 8), measurements (N, 4), so that one call predicts every track of a frame.
"""
from __future__ import annotations

import numpy as np

NDIM = 4


def xyxy_to_xyah(boxes: np.ndarray) -> np.ndarray:
    """(N, 4) corner boxes -> (N, 4) centre x, centre y, aspect w/h, height."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    w = boxes[:, 2] - boxes[:, 0]
    h = boxes[:, 3] - boxes[:, 1]
    return np.stack([boxes[:, 0] + w / 2, boxes[:, 1] + h / 2, w / np.maximum(h, 1e-9), h], axis=1)


def xyah_to_xyxy(xyah: np.ndarray) -> np.ndarray:
    """(N, >=4) centre/aspect/height (extra columns ignored) -> (N, 4) corner boxes."""
    xyah = np.asarray(xyah, dtype=np.float64).reshape(len(xyah), -1)
    h = xyah[:, 3]
    w = xyah[:, 2] * h
    return np.stack([xyah[:, 0] - w / 2, xyah[:, 1] - h / 2, xyah[:, 0] + w / 2, xyah[:, 1] + h / 2], axis=1)


class KalmanFilter:
    """Batched constant-velocity Kalman filter in xyah space (ByteTrack/DeepSORT noise model)."""

    def __init__(self, std_weight_position: float = 1.0 / 20, std_weight_velocity: float = 1.0 / 160,
                 dt: float = 1.0) -> None:
        self.std_weight_position = float(std_weight_position)
        self.std_weight_velocity = float(std_weight_velocity)
        self.motion_mat = np.eye(2 * NDIM)
        for i in range(NDIM):
            self.motion_mat[i, NDIM + i] = dt
        self.update_mat = np.eye(NDIM, 2 * NDIM)

    def initiate(self, measurement: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """New tracks from (N, 4) xyah measurements: zero velocity, height-scaled covariance."""
        z = np.asarray(measurement, dtype=np.float64).reshape(-1, NDIM)
        mean = np.concatenate([z, np.zeros_like(z)], axis=1)
        h = z[:, 3]
        wp, wv = self.std_weight_position, self.std_weight_velocity
        one = np.ones_like(h)
        std = np.stack([2 * wp * h, 2 * wp * h, 1e-2 * one, 2 * wp * h,
                        10 * wv * h, 10 * wv * h, 1e-5 * one, 10 * wv * h], axis=1)
        return mean, _diag(std**2)

    def process_noise(self, mean: np.ndarray) -> np.ndarray:
        """Q for each track (N, 8, 8), scaled by the current height."""
        h = mean[:, 3]
        wp, wv = self.std_weight_position, self.std_weight_velocity
        one = np.ones_like(h)
        std = np.stack([wp * h, wp * h, 1e-2 * one, wp * h, wv * h, wv * h, 1e-5 * one, wv * h], axis=1)
        return _diag(std**2)

    def measurement_noise(self, mean: np.ndarray) -> np.ndarray:
        """R for each track (N, 4, 4), scaled by the current height."""
        h = mean[:, 3]
        wp = self.std_weight_position
        std = np.stack([wp * h, wp * h, 1e-1 * np.ones_like(h), wp * h], axis=1)
        return _diag(std**2)

    def predict(self, mean: np.ndarray, cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One time step ahead: x = F x, P = F P F^T + Q (Q from the pre-step height)."""
        if len(mean) == 0:
            return mean, cov
        q = self.process_noise(mean)
        f = self.motion_mat
        new_mean = mean @ f.T
        new_cov = f @ cov @ f.T + q
        return new_mean, new_cov

    def project(self, mean: np.ndarray, cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """State distribution -> measurement space: (N, 4) means, (N, 4, 4) innovation covariances."""
        hm = self.update_mat
        return mean @ hm.T, hm @ cov @ hm.T + self.measurement_noise(mean)

    def update(self, mean: np.ndarray, cov: np.ndarray, measurement: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Correct (N, 8) states with (N, 4) xyah measurements."""
        if len(mean) == 0:
            return mean, cov
        z = np.asarray(measurement, dtype=np.float64).reshape(-1, NDIM)
        proj_mean, proj_cov = self.project(mean, cov)
        # K = P H^T S^-1, solved rather than inverted (S is symmetric positive definite).
        pht = cov @ self.update_mat.T  # (N, 8, 4)
        gain = np.linalg.solve(proj_cov, np.swapaxes(pht, 1, 2))  # S^-1 (H P) -> (N, 4, 8)
        gain = np.swapaxes(gain, 1, 2)  # (N, 8, 4)
        innovation = z - proj_mean
        new_mean = mean + np.einsum("nij,nj->ni", gain, innovation)
        new_cov = cov - gain @ proj_cov @ np.swapaxes(gain, 1, 2)
        return new_mean, new_cov

    def gating_distance(self, mean: np.ndarray, cov: np.ndarray, measurements: np.ndarray) -> np.ndarray:
        """Squared Mahalanobis distance (N tracks, M measurements) in measurement space."""
        proj_mean, proj_cov = self.project(mean, cov)
        z = np.asarray(measurements, dtype=np.float64).reshape(-1, NDIM)
        d = z[None, :, :] - proj_mean[:, None, :]  # (N, M, 4)
        chol = np.linalg.cholesky(proj_cov)  # (N, 4, 4)
        sol = np.linalg.solve(chol, np.swapaxes(d, 1, 2))  # (N, 4, M)
        return np.sum(sol**2, axis=1)


def _diag(values: np.ndarray) -> np.ndarray:
    n, d = values.shape
    out = np.zeros((n, d, d))
    idx = np.arange(d)
    out[:, idx, idx] = values
    return out


MOTIONS = {"KalmanFilter": KalmanFilter}
