"""det's Open Images dataset + metric vs MMDetection's OpenImagesDataset + OpenImagesMetric (peer)
on random cases: a random class hierarchy, group-of boxes, image-level labels (positive and
negative), detections jittered around boxes with their class, a parent or a child class,
detections anywhere, tied scores. Both read the same CSV/JSON files (MMDetection's image metas
are its own pickle format, written here for the peer only); the mAP is compared unrounded.
Exits 1 unless every difference is 0.

Usage: .venv/bin/python benchmarks/parity/openimages_metric.py [--cases 20]
  (the peer environment: ../peers-env, or DET_PEERS_ENV=/work/peers-env)
"""
from __future__ import annotations

import json
import pickle
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from common import case_count, import_mmdet_without_ops  # noqa: E402

from det.core.data.datasets.openimages import load_openimages  # noqa: E402
from det.core.evaluation.openimages import openimages_evaluate  # noqa: E402

HEADER = "ImageID,Source,LabelName,Confidence,XMin,XMax,YMin,YMax,IsOccluded,IsTruncated,IsGroupOf,IsDepiction,IsInside"


def _hierarchy(rng, mids: list[str]) -> tuple[dict, dict[str, str]]:
    """A random tree over the classes and each class's parent (None under the root)."""
    parent: dict[str, str | None] = {}
    nodes: dict[str, dict] = {"/m/root": {"LabelName": "/m/root", "Subcategory": []}}
    for k, mid in enumerate(mids):
        up = mids[int(rng.integers(0, k))] if k and rng.random() < 0.6 else None
        parent[mid] = up
        nodes[mid] = {"LabelName": mid}
        nodes[up or "/m/root"].setdefault("Subcategory", []).append(nodes[mid])
    return nodes["/m/root"], parent


def _norm_box(rng) -> list[float]:
    w, h = rng.uniform(0.05, 0.6, 2)
    x, y = rng.uniform(0, 1 - w), rng.uniform(0, 1 - h)
    return [float(x), float(x + w), float(y), float(y + h)]


def make_case(seed: int, tmp: Path) -> list[dict]:
    """Writes the files into `tmp`; returns COCO results (ImageID and MID as ids)."""
    rng = np.random.default_rng(seed)
    mids = [f"/m/c{k}" for k in range(int(rng.integers(3, 9)))]
    tree, parent = _hierarchy(rng, mids)
    rows, labels, metas, sizes, dets = [HEADER], ["ImageID,Source,LabelName,Confidence"], [], {}, []
    for i in range(int(rng.integers(3, 12))):
        name, (h, w) = f"img{i}", (int(rng.integers(50, 400)), int(rng.integers(50, 400)))
        sizes[name] = [h, w]
        metas.append({"filename": f"{name}.jpg", "ori_shape": (h, w, 3)})
        for _ in range(int(rng.integers(1, 7))):
            mid, box, group = mids[int(rng.integers(len(mids)))], _norm_box(rng), int(rng.random() < 0.25)
            rows.append(f"{name},xclick,{mid},1,{box[0]},{box[1]},{box[2]},{box[3]},0,0,{group},0,0")
            for _ in range(int(rng.integers(0, 3))):
                j = rng.normal(0, 0.04, 4)
                x1, x2, y1, y2 = (float(np.clip(b + d, 0, 1)) for b, d in zip(box, j))
                cls = parent[mid] if parent[mid] and rng.random() < 0.2 else mid
                dets.append({"image_id": name, "category_id": cls,
                             "bbox": [x1 * w, y1 * h, max(x2 - x1, 0.01) * w, max(y2 - y1, 0.01) * h]})
        for mid in mids:
            if rng.random() < 0.3:
                labels.append(f"{name},verification,{mid},{int(rng.random() < 0.5)}")
        for _ in range(int(rng.integers(0, 5))):
            x1, x2, y1, y2 = _norm_box(rng)
            dets.append({"image_id": name, "category_id": mids[int(rng.integers(len(mids)))],
                         "bbox": [x1 * w, y1 * h, (x2 - x1) * w, (y2 - y1) * h]})
    for d in dets:
        d["score"] = float(rng.integers(1, 10)) / 10 if rng.random() < 0.3 else float(rng.uniform(0.01, 1))
    (tmp / "boxes.csv").write_text("\n".join(rows) + "\n")
    (tmp / "labels.csv").write_text("\n".join(labels) + "\n")
    (tmp / "classes.csv").write_text("".join(f"{m},name {m}\n" for m in mids))
    (tmp / "hierarchy.json").write_text(json.dumps(tree))
    (tmp / "sizes.json").write_text(json.dumps(sizes))
    (tmp / "metas.pkl").write_bytes(pickle.dumps(metas))
    return dets


def reference(dataset_cls, metric_cls, tmp: Path, dets: list[dict]) -> float:
    import torch

    ds = dataset_cls(data_root=str(tmp), ann_file="boxes.csv", label_file="classes.csv", meta_file="metas.pkl",
                     hierarchy_file="hierarchy.json", image_level_ann_file="labels.csv", data_prefix={"img": ""},
                     test_mode=True, pipeline=[])
    metric = metric_cls()
    metric.dataset_meta = ds.metainfo
    mids = [line.split(",")[0] for line in (tmp / "classes.csv").read_text().splitlines()]
    for k in range(len(ds)):
        info = ds.get_data_info(k)
        mine = [d for d in dets if d["image_id"] == info["img_id"]]
        boxes = np.array([[d["bbox"][0], d["bbox"][1], d["bbox"][0] + d["bbox"][2], d["bbox"][1] + d["bbox"][3]]
                          for d in mine], np.float64).reshape(-1, 4).astype(np.float32)
        info["pred_instances"] = {"bboxes": torch.from_numpy(boxes),
                                  "scores": torch.tensor([d["score"] for d in mine], dtype=torch.float32),
                                  "labels": torch.tensor([mids.index(d["category_id"]) for d in mine], dtype=torch.int64)}
        metric.process({}, [info])
    return float(metric.compute_metrics(metric.results)["mAP"])


def main() -> None:
    cases = case_count(__doc__, 20)
    found = import_mmdet_without_ops("mmdet.evaluation.metrics.openimages_metric", "mmdet.datasets.openimages")
    if found is None:
        sys.exit("MMDetection (peer) not available: nothing to compare")
    metric_mod, data_mod = found
    import logging

    logging.getLogger("mmengine").setLevel(logging.ERROR)
    worst = 0.0
    for seed in range(cases):
        with tempfile.TemporaryDirectory() as tmp_dir:
            tmp = Path(tmp_dir)
            dets = make_case(seed, tmp)
            ref = reference(data_mod.OpenImagesDataset, metric_mod.OpenImagesMetric, tmp, dets)
            mids, _, relation, images = load_openimages(tmp / "boxes.csv", tmp / "classes.csv", tmp / "hierarchy.json",
                                                        tmp / "labels.csv", tmp / "sizes.json", tmp)
            ours = openimages_evaluate(images, dets, mids, relation)["openimages/mAP"]
        worst = max(worst, abs(ours - ref))
        print(f"case {seed}: {len(images)} images, {len(mids)} classes, {len(dets)} dets: mAP {ours:.6f} "
              f"(mmdet {ref:.6f}), |diff| {abs(ours - ref):.3g}")
    print(f"largest difference over {cases} cases: {worst:.3g}")
    sys.exit(0 if worst == 0 else 1)


if __name__ == "__main__":
    main()
