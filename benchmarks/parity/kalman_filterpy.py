"""det's batched Kalman filter vs filterpy's KalmanFilter (peer) with the DeepSORT/ByteTrack
noise model, and the speed of one batched predict+update against a per-track filterpy loop.

    .venv/bin/python benchmarks/parity/kalman_filterpy.py            # live check
    .venv/bin/python benchmarks/parity/kalman_filterpy.py --write    # regenerate the test fixture

--write stores measurements and filterpy's states after every predict/update in
tests/core/tracking/fixtures/kalman_filterpy.json (used by tests without filterpy).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from common import import_peer  # noqa: E402

FIXTURE = HERE.parents[1] / "tests" / "core" / "tracking" / "fixtures" / "kalman_filterpy.json"
WP, WV = 1.0 / 20, 1.0 / 160  # position / velocity noise weights (relative to box height)


def _q(h: float) -> np.ndarray:
    return np.diag(np.square([WP * h, WP * h, 1e-2, WP * h, WV * h, WV * h, 1e-5, WV * h]))


def _r(h: float) -> np.ndarray:
    return np.diag(np.square([WP * h, WP * h, 1e-1, WP * h]))


def _scenario(seed: int = 0, tracks: int = 3, steps: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """Measurements (steps, tracks, 4) xyah along noisy constant-velocity paths, and a mask of
    which (step, track) pairs get an update (some steps are predict-only, as during occlusion)."""
    rng = np.random.default_rng(seed)
    start = np.column_stack([rng.uniform(50, 500, tracks), rng.uniform(50, 400, tracks),
                             rng.uniform(0.3, 0.7, tracks), rng.uniform(40, 160, tracks)])
    vel = np.column_stack([rng.uniform(-5, 5, tracks), rng.uniform(-3, 3, tracks), np.zeros(tracks),
                           rng.uniform(-0.5, 0.5, tracks)])
    t = np.arange(steps)[:, None, None]
    z = start[None] + vel[None] * t + rng.normal(0, 1.5, size=(steps, tracks, 4)) * np.array([1, 1, 0.005, 0.5])
    update = rng.random((steps, tracks)) > 0.2
    update[0] = True
    return z, update


def filterpy_run(z: np.ndarray, update: np.ndarray) -> dict:
    kalman = import_peer("filterpy.kalman")
    if kalman is None:
        raise SystemExit("filterpy (peer env) is required")
    steps, tracks, _ = z.shape
    f = np.eye(8)
    f[:4, 4:] = np.eye(4)
    hm = np.eye(4, 8)
    means, covs = np.zeros((steps, tracks, 8)), np.zeros((steps, tracks, 8, 8))
    pred_means, pred_covs = np.zeros_like(means), np.zeros_like(covs)
    for k in range(tracks):
        kf = kalman.KalmanFilter(dim_x=8, dim_z=4)
        kf.F, kf.H = f, hm
        h0 = z[0, k, 3]
        kf.x = np.concatenate([z[0, k], np.zeros(4)]).reshape(8, 1)
        kf.P = np.diag(np.square([2 * WP * h0, 2 * WP * h0, 1e-2, 2 * WP * h0,
                                  10 * WV * h0, 10 * WV * h0, 1e-5, 10 * WV * h0]))
        means[0, k], covs[0, k] = kf.x[:, 0], kf.P
        pred_means[0, k], pred_covs[0, k] = kf.x[:, 0], kf.P
        for s in range(1, steps):
            kf.Q = _q(float(kf.x[3, 0]))
            kf.predict()
            pred_means[s, k], pred_covs[s, k] = kf.x[:, 0], kf.P
            if update[s, k]:
                kf.R = _r(float(kf.x[3, 0]))
                kf.update(z[s, k].reshape(4, 1))
            means[s, k], covs[s, k] = kf.x[:, 0], kf.P
    return {"pred_mean": pred_means, "pred_cov": pred_covs, "mean": means, "cov": covs}


def det_run(z: np.ndarray, update: np.ndarray) -> dict:
    from det.core.tracking.kalman import KalmanFilter

    kf = KalmanFilter()
    steps, tracks, _ = z.shape
    mean, cov = kf.initiate(z[0])
    out = {k: [] for k in ("pred_mean", "pred_cov", "mean", "cov")}
    out["pred_mean"].append(mean)
    out["pred_cov"].append(cov)
    out["mean"].append(mean)
    out["cov"].append(cov)
    for s in range(1, steps):
        mean, cov = kf.predict(mean, cov)
        out["pred_mean"].append(mean)
        out["pred_cov"].append(cov)
        sel = update[s]
        if sel.any():
            m, c = kf.update(mean[sel], cov[sel], z[s, sel])
            mean, cov = mean.copy(), cov.copy()
            mean[sel], cov[sel] = m, c
        out["mean"].append(mean)
        out["cov"].append(cov)
    return {k: np.stack(v) for k, v in out.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", action="store_true", help="regenerate the test fixture")
    args = parser.parse_args()
    z, update = _scenario()
    ref = filterpy_run(z, update)
    if args.write:
        FIXTURE.parent.mkdir(parents=True, exist_ok=True)
        payload = {"measurements": z.tolist(), "update": update.astype(int).tolist(),
                   **{k: v.tolist() for k, v in ref.items()}}
        FIXTURE.write_text(json.dumps(payload) + "\n")
        print(f"wrote {FIXTURE}")
    ours = det_run(z, update)
    worst = max(float(np.max(np.abs(ours[k] - ref[k]))) for k in ref)
    print(f"det vs filterpy: max |difference| over {z.shape[0]} steps x {z.shape[1]} tracks = {worst:.3g}")
    # speed: one frame of 50 tracks, batched det vs a filterpy object per track
    kalman = import_peer("filterpy.kalman")
    from det.core.tracking.kalman import KalmanFilter

    kf = KalmanFilter()
    zz = np.tile(z[0], (50 // len(z[0]) + 1, 1))[:50]
    mean, cov = kf.initiate(zz)
    t0 = time.perf_counter()
    for _ in range(200):
        m, c = kf.predict(mean, cov)
        kf.update(m, c, zz)
    det_ms = (time.perf_counter() - t0) / 200 * 1000
    filters = []
    for k in range(50):
        f = kalman.KalmanFilter(dim_x=8, dim_z=4)
        f.F = kf.motion_mat
        f.H = kf.update_mat
        f.x = mean[k].reshape(8, 1)
        f.P = cov[k]
        filters.append(f)
    t0 = time.perf_counter()
    for _ in range(20):
        for k, f in enumerate(filters):
            f.Q = _q(float(f.x[3, 0]))
            f.predict()
            f.R = _r(float(f.x[3, 0]))
            f.update(zz[k].reshape(4, 1))
    peer_ms = (time.perf_counter() - t0) / 20 * 1000
    print(f"predict+update of 50 tracks: det {det_ms:.3f} ms, filterpy {peer_ms:.3f} ms (x{peer_ms / det_ms:.1f})")
    sys.exit(0 if worst <= 1e-9 else 1)


if __name__ == "__main__":
    main()
