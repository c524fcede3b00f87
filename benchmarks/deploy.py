"""Deployment speed: RTMDet-tiny at 640 through torch eager fp32, torch bf16 autocast, ONNX Runtime
and OpenVINO (one image, full forward incl. post-processing, interleaved repeats), then
`det serve` under 16 concurrent clients against `det infer --batch-size 8` on the same images.

    .venv/bin/python benchmarks/deploy.py [--quick] [--json out.json]

The model has random weights with BatchNorm statistics calibrated on synthetic shapes (speed
does not depend on what the weights learned). The load average is printed with the numbers:
the machine may be shared.
"""
from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "core" / "deploy"))
from common import arg_parser, emit, interleaved_ms  # noqa: E402


def _detectors(ckpt: Path, work: Path) -> dict:
    from det.core.deploy.export import ExportOptions, export_checkpoint
    from det.core.apis.backends import load_detector

    for fmt, suffix in (("onnx", ".onnx"), ("openvino", ".xml")):
        for nms, stem in ((True, "m"), (False, "raw")):
            export_checkpoint(ckpt, ExportOptions(format=fmt, out=work / f"{stem}{suffix}", nms=nms),
                              log=lambda m: print(m, file=sys.stderr))
    return {"torch fp32": load_detector(ckpt, device="cpu"),
            "torch bf16": load_detector(ckpt, device="cpu", amp=True),
            "onnxruntime": load_detector(work / "m.onnx", backend="onnxruntime"),
            "openvino": load_detector(work / "m.xml", backend="openvino"),
            # --no-nms graphs: the network only, det decodes and runs its own NMS
            "onnxruntime --no-nms": load_detector(work / "raw.onnx", backend="onnxruntime"),
            "openvino --no-nms": load_detector(work / "raw.xml", backend="openvino")}


def latency_rows(ckpt: Path, work: Path, repeat: int) -> list[dict]:
    from deployfixtures import shapes_image

    dets = _detectors(ckpt, work)
    img = shapes_image(0, 640)
    prepared = [dets["torch fp32"].preprocess(img)]
    times = interleaved_ms({k: (lambda d=d: d.predict_prepared(prepared)) for k, d in dets.items()}, repeat=repeat)
    base = times["torch fp32"]
    return [{"case": k, "det_ms": v, "speedup_vs_eager_fp32": base / v} for k, v in times.items()]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_rows(ckpt: Path, work: Path, n_images: int) -> list[dict]:
    import httpx

    from deployfixtures import shapes_image

    folder = work / "imgs"
    folder.mkdir(exist_ok=True)
    for i in range(n_images):
        cv2.imwrite(str(folder / f"{i:03d}.jpg"), shapes_image(i, 640))
    det = [sys.executable, "-m", "det.cli"]
    t0 = time.perf_counter()
    subprocess.run([*det, "infer", str(folder), "--weights", str(ckpt), "--batch-size", "8", "--no-vis", "--format", "jsonl",
                    "--out-dir", str(work / "out"), "--device", "cpu"], check=True, capture_output=True)
    infer_s = time.perf_counter() - t0
    port = _free_port()
    proc = subprocess.Popen([*det, "serve", str(ckpt), "--port", str(port), "--max-batch", "8", "--max-wait-ms", "10",
                             "--device", "cpu"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.5)
        blobs = [p.read_bytes() for p in sorted(folder.iterdir())]
        lat: list[float] = []

        def client(k: int) -> None:
            with httpx.Client(base_url=url, timeout=300) as c:
                for j in range(k, len(blobs), 16):
                    t = time.perf_counter()
                    c.post("/v1/detect", content=blobs[j], headers={"content-type": "image/jpeg"}).raise_for_status()
                    lat.append((time.perf_counter() - t) * 1000)

        t0 = time.perf_counter()
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(client, range(16)))
        serve_s = time.perf_counter() - t0
    finally:
        proc.terminate()
        proc.wait()
    q = statistics.quantiles(lat, n=20)
    return [{"case": f"det infer --batch-size 8 ({n_images} images, incl. model load)", "images_per_s": n_images / infer_s},
            {"case": "det serve, 16 clients, --max-batch 8", "images_per_s": n_images / serve_s,
             "p50_ms": statistics.median(lat), "p95_ms": q[18]}]


def main() -> None:
    args = arg_parser(__doc__.splitlines()[0]).parse_args()
    from deployfixtures import make_checkpoint

    load = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        ckpt = make_checkpoint("rtmdet_tiny", work / "rtmdet_tiny.pt")
        rows = latency_rows(ckpt, work, repeat=3 if args.quick else 10)
        rows += serve_rows(ckpt, work, 32 if args.quick else 96)
    notes = [f"load average before/after: {load[0]:.1f} / {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores",
             "latency: one 640x640 image, predict_prepared (forward + post-processing), median of interleaved repeats"]
    emit("Deployment backends, RTMDet-tiny 640", rows, notes, args.json)


if __name__ == "__main__":
    main()
