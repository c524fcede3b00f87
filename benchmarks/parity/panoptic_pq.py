"""`det eval --metric panoptic` vs panopticapi's `pq_compute` (the COCO panoptic evaluation).

Generates a synthetic panoptic split with `det synth shapes --panoptic`, marks some thing
segments as crowd, writes perturbed predictions (grown/shrunk things, wrong classes, dropped
segments, spurious blobs, some lying on VOID or crowd) with det's prediction writer, scores them
with the real command (`det eval ... --metric panoptic --json`, a subprocess) and with
panopticapi (peer env: `pip install panopticapi-lite`, the PyPI packaging of cocodataset/panopticapi),
and prints the largest difference over PQ/SQ/RQ of All/Things/Stuff and every class.

Usage: .venv/bin/python benchmarks/parity/panoptic_pq.py [--images 40] [--size 128] [--seed 0]
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from common import import_peer  # noqa: E402


def mark_crowds(gt_json: Path, out_json: Path, every: int = 5) -> None:
    doc = json.loads(gt_json.read_text())
    things = {c["id"] for c in doc["categories"] if c["isthing"]}
    k = 0
    for ann in doc["annotations"]:
        for seg in ann["segments_info"]:
            if seg["category_id"] in things:
                k += 1
                seg["iscrowd"] = int(k % every == 0)
    out_json.write_text(json.dumps(doc))


def perturb(ids: np.ndarray, segs: list[dict], cat_ids: list[int], r: np.random.Generator):
    """A prediction derived from the ground truth: labels are dataset label indices."""
    from det.core.structures.panoptic import PanopticPrediction

    out = np.zeros_like(ids)
    segments = []
    label_of = {c: i for i, c in enumerate(cat_ids)}
    for k, seg in enumerate(segs):
        mask = (ids == seg["id"]).astype(np.uint8)
        u = r.random()
        if u < 0.1:
            continue  # dropped: a false negative
        if u < 0.35:
            kernel = np.ones((int(r.integers(2, 6)),) * 2, np.uint8)
            mask = cv2.dilate(mask, kernel) if r.random() < 0.5 else cv2.erode(mask, kernel)
        label = label_of[seg["category_id"]]
        if r.random() < 0.1:
            label = int(r.integers(len(cat_ids)))
        out[mask.astype(bool)] = k + 1
        segments.append({"id": k + 1, "label": label, "isthing": None})
    for j in range(int(r.integers(0, 3))):  # spurious blobs, some on VOID or crowd
        h, w = ids.shape
        y, x = int(r.integers(0, h)), int(r.integers(0, w))
        blob = np.zeros_like(ids, np.uint8)
        cv2.circle(blob, (x, y), int(r.integers(2, 10)), 1, -1)
        sid = len(segs) + j + 1
        out[blob.astype(bool)] = sid
        segments.append({"id": sid, "label": int(r.integers(len(cat_ids))), "isthing": None})
    return PanopticPrediction(out, segments)


def write_predictions(root: Path, gt_json: Path, out_json: Path, seed: int) -> None:
    from det.core.data.panoptic_io import read_segment_ids, write_panoptic_predictions

    doc = json.loads(gt_json.read_text())
    cat_ids = [c["id"] for c in doc["categories"]]
    r = np.random.default_rng(seed)
    items = []
    for ann in doc["annotations"]:
        ids = read_segment_ids(root / "panoptic_val" / ann["file_name"])
        items.append(({"id": ann["image_id"], "file_name": ann["file_name"]}, perturb(ids, ann["segments_info"], cat_ids, r)))
    write_panoptic_predictions(out_json, items, doc["categories"], cat_ids)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=40)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    pq = import_peer("panopticapi.evaluation")
    if pq is None:
        sys.exit("panopticapi (peer) not available: /work/peers-env/venv/bin/pip install panopticapi-lite")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        subprocess.run([sys.executable, "-m", "det.cli", "synth", "shapes", str(root), "--panoptic", "--num-train", "0",
                        "--num-val", str(args.images), "--size", str(args.size), "--seed", str(args.seed)],
                       check=True, capture_output=True)
        gt = root / "gt.json"
        mark_crowds(root / "panoptic_val.json", gt)
        pred = root / "pred.json"
        write_predictions(root, gt, pred, args.seed)
        start = time.perf_counter()
        res = subprocess.run([sys.executable, "-m", "det.cli", "eval", str(pred), "--ann", str(gt), "--metric", "panoptic",
                              "--gt-dir", str(root / "panoptic_val"), "--classwise", "--json"],
                             check=True, capture_output=True, text=True)
        det_s = time.perf_counter() - start
        ours = json.loads(res.stdout)
        start = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            ref = pq.pq_compute(str(gt), str(pred), str(root / "panoptic_val"), str(root / "pred"))
        peer_s = time.perf_counter() - start
        names = {c["id"]: c["name"] for c in json.loads(gt.read_text())["categories"]}
    report(ours, ref, names, det_s, peer_s)


def report(ours: dict, ref: dict, names: dict[int, str], det_s: float, peer_s: float) -> None:
    rows = []
    for group, suffix in (("All", ""), ("Things", "_th"), ("Stuff", "_st")):
        rows += [(f"{group} {k.upper()}", ours[k.upper() + suffix], ref[group][k]) for k in ("pq", "sq", "rq")]
    print(f"{'metric':14s} {'det':>8s} {'panopticapi':>12s}")
    for name, a, b in rows:
        print(f"{name:14s} {a:8.5f} {b:12.5f}")
    for cid, row in ref["per_class"].items():
        mine = ours["classwise"].get(names[cid], {"PQ": 0.0, "SQ": 0.0, "RQ": 0.0})
        rows += [(f"{names[cid]} {k.upper()}", mine[k.upper()], row[k]) for k in ("pq", "sq", "rq")]
    worst = max(abs(a - b) for _, a, b in rows)
    print(f"max |det - panopticapi| over {len(rows)} numbers (All/Things/Stuff and {len(ref['per_class'])} classes): {worst:.2e}")
    print(f"wall time (det includes its process start): det {det_s:.2f} s, panopticapi {peer_s:.2f} s")


if __name__ == "__main__":
    main()
