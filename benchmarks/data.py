"""Data pipeline speed: images/s of RTMDet's training pipeline (cached Mosaic, RandomResize,
RandomCrop, YOLOX HSV, flip, Pad, pack) on 320 px synthetic shapes, det beside MMDetection 3.x
from the peer environment (run in a subprocess: it has its own torch). Single process, no
loader workers, OpenCV threads off in both (as inside loader workers); the same images, the
same number of samples after the same warm-up. ratio = det images/s / MMDetection images/s.

Usage: python benchmarks/data.py [--quick] [--json OUT]
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, arg_parser, emit, peer_site_packages  # noqa: E402

SIZE = 320


def det_pipeline(with_mask: bool) -> list[dict]:
    return [
        {"type": "LoadImage"},
        {"type": "LoadAnnotations", "with_bbox": True, "with_mask": with_mask},
        {"type": "Mosaic", "img_scale": [SIZE, SIZE], "pad_val": 114.0, "max_cached_images": 20, "random_pop": False},
        {"type": "RandomResize", "scale": [2 * SIZE, 2 * SIZE], "ratio_range": [0.5, 2.0], "keep_ratio": True},
        {"type": "RandomCrop", "crop_size": [SIZE, SIZE]},
        {"type": "YOLOXHSVRandomAug"},
        {"type": "RandomFlip", "prob": 0.5},
        {"type": "Pad", "size": [SIZE, SIZE], "pad_val": {"img": [114, 114, 114]}},
        {"type": "Pack"},
    ]


def time_det(root: Path, n: int, warmup: int, with_mask: bool) -> float:
    """Images per second of det's pipeline over `n` samples (after `warmup`)."""
    import cv2
    import torch

    from det.core.data.datasets import CocoDataset
    from det.core.data.transforms import seed_all

    cv2.setNumThreads(0)
    torch.set_num_threads(1)
    seed_all(0)
    ds = CocoDataset(ann_file=str(root / "instances_train.json"), data_prefix=str(root), pipeline=det_pipeline(with_mask))
    for i in range(warmup):
        ds[i % len(ds)]
    start = time.perf_counter()
    for i in range(n):
        ds[(warmup + i) % len(ds)]
    return n / (time.perf_counter() - start)


# Runs inside the peer interpreter. mmcv-lite lacks compiled ops; MMDetection's transform
# modules import mmcv.ops names at import time only, so those resolve to inert placeholders.
MMCV_STUB = r"""
import importlib.abc, importlib.machinery, json, sys, time, types

class _Missing:
    def __init__(self, *a, **k):
        raise RuntimeError("mmcv.ops is not compiled in the peer environment")

class _Ops(types.ModuleType):
    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return type(name, (_Missing,), {})

class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, fullname, path=None, target=None):
        if fullname in ("mmcv.ops", "mmcv._ext") or fullname.startswith("mmcv.ops."):
            return importlib.machinery.ModuleSpec(fullname, self, is_package=True)
    def create_module(self, spec):
        m = _Ops(spec.name); m.__path__ = []; return m
    def exec_module(self, module):
        pass

sys.meta_path.insert(0, _Finder())
"""

PEER_SCRIPT = MMCV_STUB + r"""
root, n, warmup, size, with_mask = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5] == "1"
import cv2, numpy as np, random, torch
cv2.setNumThreads(0); torch.set_num_threads(1)
from mmdet.utils import register_all_modules
register_all_modules()
from mmdet.datasets import CocoDataset
random.seed(0); np.random.seed(0); torch.manual_seed(0)
pipeline = [
    dict(type="LoadImageFromFile"),
    dict(type="LoadAnnotations", with_bbox=True, with_mask=with_mask),
    dict(type="CachedMosaic", img_scale=(size, size), pad_val=114.0, max_cached_images=20, random_pop=False),
    dict(type="RandomResize", scale=(2 * size, 2 * size), ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type="RandomCrop", crop_size=(size, size)),
    dict(type="YOLOXHSVRandomAug"),
    dict(type="RandomFlip", prob=0.5),
    dict(type="Pad", size=(size, size), pad_val=dict(img=(114, 114, 114))),
    dict(type="PackDetInputs"),
]
classes = ("circle", "square", "triangle", "star", "hexagon", "cross")
ds = CocoDataset(ann_file=root + "/instances_train.json", data_prefix=dict(img=root + "/"), metainfo=dict(classes=classes),
                 pipeline=pipeline, filter_cfg=dict(filter_empty_gt=True))
for i in range(warmup):
    ds[i % len(ds)]
t = time.perf_counter()
for i in range(n):
    ds[(warmup + i) % len(ds)]
print(json.dumps({"ips": n / (time.perf_counter() - t)}))
"""


# Deterministic transforms on the same images in both libraries: image bytes, boxes and scale
# factors must agree (a parity check that rides along with the timing).
PARITY_PIPELINE = [
    {"type": "LoadImage"}, {"type": "LoadAnnotations", "with_bbox": True},
    {"type": "Resize", "scale": [200, 300], "keep_ratio": True},
    {"type": "RandomFlip", "prob": 1.0, "direction": "horizontal"},
    {"type": "Pad", "size_divisor": 32, "pad_val": {"img": [114, 114, 114]}},
]

PEER_PARITY = MMCV_STUB + r"""
import hashlib
root, k = sys.argv[1], int(sys.argv[2])
from mmdet.utils import register_all_modules
register_all_modules()
from mmdet.datasets import CocoDataset
pipeline = [dict(type="LoadImageFromFile"), dict(type="LoadAnnotations", with_bbox=True),
            dict(type="Resize", scale=(200, 300), keep_ratio=True),
            dict(type="RandomFlip", prob=1.0, direction="horizontal"),
            dict(type="Pad", size_divisor=32, pad_val=dict(img=(114, 114, 114)))]
classes = ("circle", "square", "triangle", "star", "hexagon", "cross")
ds = CocoDataset(ann_file=root + "/instances_train.json", data_prefix=dict(img=root + "/"), metainfo=dict(classes=classes),
                 pipeline=pipeline, filter_cfg=dict(filter_empty_gt=True), serialize_data=False)
out = []
for i in range(k):
    r = ds[i]
    out.append({"img": hashlib.md5(r["img"].tobytes()).hexdigest(), "shape": list(r["img"].shape),
                "boxes": r["gt_bboxes"].tensor.numpy().round(3).tolist(), "labels": r["gt_bboxes_labels"].tolist(),
                "scale_factor": [round(float(v), 6) for v in r["scale_factor"]]})
print(json.dumps(out))
"""


def parity(root: Path, k: int) -> str | None:
    """Compare det and MMDetection on Resize(keep_ratio) + flip + Pad; a note or None."""
    import hashlib

    import numpy as np

    from det.core.data.datasets import CocoDataset

    site = peer_site_packages()
    if site is None:
        return None
    ds = CocoDataset(ann_file=str(root / "instances_train.json"), data_prefix=str(root), pipeline=PARITY_PIPELINE)
    mine = []
    for i in range(k):
        r = ds[i]
        mine.append({"img": hashlib.md5(np.ascontiguousarray(r["img"]).tobytes()).hexdigest(), "shape": list(r["img"].shape),
                     "boxes": np.round(r["gt_bboxes"], 3).tolist(), "labels": r["gt_labels"].tolist(),
                     "scale_factor": [round(float(v), 6) for v in r["scale_factor"]]})
    python = Path(site).parents[2] / "bin" / "python"
    res = subprocess.run([str(python), "-c", PEER_PARITY, str(root), str(k)], capture_output=True, text=True,
                         cwd=tempfile.gettempdir(), timeout=600)
    if res.returncode != 0:
        return f"parity check could not run MMDetection ({(res.stderr.strip().splitlines() or ['?'])[-1]})"
    theirs = json.loads(res.stdout.strip().splitlines()[-1])
    same = {key: sum(a[key] == b[key] if key != "boxes" else np.allclose(a[key], b[key], atol=1e-3)
                     for a, b in zip(mine, theirs)) for key in ("img", "shape", "boxes", "labels", "scale_factor")}
    return ("parity (Resize keep_ratio + flip + Pad, %d images): identical image bytes %d, shapes %d, boxes %d, "
            "labels %d, scale factors %d" % (k, same["img"], same["shape"], same["boxes"], same["labels"],
                                             same["scale_factor"]))


def time_peer(root: Path, n: int, warmup: int, with_mask: bool) -> float | None:
    site = peer_site_packages()
    if site is None:
        print("[bench] peer environment not found; MMDetection column left empty", file=sys.stderr)
        return None
    python = Path(site).parents[2] / "bin" / "python"
    cmd = [str(python), "-c", PEER_SCRIPT, str(root), str(n), str(warmup), str(SIZE), "1" if with_mask else "0"]
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=tempfile.gettempdir(), timeout=1800)
    if res.returncode != 0:
        tail = res.stderr.strip().splitlines()[-1:] or ["?"]
        print(f"[bench] MMDetection pipeline failed: {tail[0]}", file=sys.stderr)
        return None
    return float(json.loads(res.stdout.strip().splitlines()[-1])["ips"])


def main() -> None:
    parser = arg_parser(__doc__.splitlines()[0])
    parser.add_argument("--num-images", type=int, default=None, help="timed samples per case")
    args = parser.parse_args()
    n = args.num_images or (60 if args.quick else 400)
    warmup = 10 if args.quick else 30
    sys.path.insert(0, str(REPO))
    from det.core.data.synthetic import generate_shapes

    rows, notes = [], []
    with tempfile.TemporaryDirectory(prefix="det-bench-data-") as tmp:
        root = Path(tmp)
        generate_shapes(root, num_train=40 if args.quick else 120, num_val=0, size=SIZE, seed=0, progress=False)
        for case, with_mask in (("rtmdet-train 320px (boxes)", False), ("rtmdet-train 320px (boxes+masks)", True)):
            det_ips = time_det(root, n, warmup, with_mask)
            peer_ips = time_peer(root, n, warmup, with_mask)
            row = {"case": case, "det_ms": 1000.0 / det_ips, "det_img_s": det_ips}
            if peer_ips is not None:
                row.update(peer="mmdet 3.3", peer_ms=1000.0 / peer_ips, peer_img_s=peer_ips, ratio=det_ips / peer_ips)
            rows.append(row)
        note = parity(root, 10)
        if note:
            notes.append(note)
    notes.append(f"{n} samples after {warmup} warm-up, single process, cv2 threads 0, torch threads 1; "
                 "ratio = det img/s / MMDetection img/s (> 1: det faster)")
    notes.append(f"cpu count {os.cpu_count()}; shared machine, numbers vary with load")
    emit("Data pipeline throughput (RTMDet training pipeline)", rows, notes, args.json)


if __name__ == "__main__":
    main()
