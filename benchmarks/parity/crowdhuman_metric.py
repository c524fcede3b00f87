"""det's CrowdHuman metric vs MMDetection's CrowdHumanMetric (peer) on random crowded cases.

Each case has images of random sizes with persons (some partly outside the image), `mask`
regions and `extra.ignore` persons; detections jittered around persons, on ignore regions and
anywhere, with tied scores. MMDetection reads the same odgt file and the same boxes (its own
result format); AP, mMR and JI are compared unrounded. Exits 1 unless every difference is
under 1e-12 (JI sums per-image ratios in a process-dependent order in MMDetection).

Usage: .venv/bin/python benchmarks/parity/crowdhuman_metric.py [--cases 20]
  (the peer environment: ../peers-env, or DET_PEERS_ENV=/work/peers-env)
"""
from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from common import case_count, import_mmdet_without_ops  # noqa: E402

from det.core.evaluation.crowdhuman import crowdhuman_evaluate, load_crowdhuman  # noqa: E402


def _box(rng, w, h) -> list[float]:
    bw, bh = rng.uniform(8, w / 2), rng.uniform(16, h / 1.5)
    x, y = rng.uniform(-10, w - bw / 2), rng.uniform(-10, h - bh / 2)
    return [round(float(v), int(rng.integers(0, 3))) for v in (x, y, bw, bh)]


def make_case(seed: int) -> tuple[list[dict], dict, list[dict]]:
    rng = np.random.default_rng(seed)
    odgt, sizes, dets = [], {}, []
    for i in range(int(rng.integers(3, 12))):
        w, h = int(rng.integers(80, 300)), int(rng.integers(80, 300))
        name = f"{seed}_{i},{rng.integers(1 << 30):x}"
        sizes[name] = [h, w]
        boxes = []
        for _ in range(int(rng.integers(1, 10))):
            tag = "mask" if rng.random() < 0.15 else "person"
            boxes.append({"fbox": _box(rng, w, h), "hbox": [0, 0, 1, 1], "vbox": [0, 0, 1, 1], "tag": tag,
                          "extra": {"ignore": int(rng.random() < 0.1)}})
        odgt.append({"ID": name, "gtboxes": boxes})
        for b in boxes:
            for _ in range(int(rng.integers(0, 3))):
                j = rng.normal(0, 0.15, 4) * np.array(b["fbox"][2:] * 2)
                dets.append({"image_id": name, "bbox": [float(b["fbox"][k] + j[k]) for k in range(2)]
                             + [abs(float(b["fbox"][k] + j[k])) + 1 for k in (2, 3)]})
        for _ in range(int(rng.integers(0, 6))):
            dets.append({"image_id": name, "bbox": _box(rng, w, h)})
    order = rng.permutation(len(dets))
    dets = [dets[k] for k in order]
    for d in dets:
        d["category_id"] = 1
        d["score"] = float(rng.integers(0, 10)) / 10 if rng.random() < 0.3 else float(rng.random())
    return odgt, sizes, dets


def reference(metric_cls, odgt_path: Path, odgt: list[dict], sizes: dict, dets: list[dict], tmp: Path) -> dict:
    """MMDetection's numbers (unrounded) from its own result format."""
    per = {r["ID"]: [] for r in odgt}
    for d in dets:
        per[d["image_id"]].append({"box": d["bbox"], "score": d["score"], "tag": 1})
    mm = [{"ID": r["ID"], "height": sizes[r["ID"]][0], "width": sizes[r["ID"]][1], "dtboxes": per[r["ID"]]}
          for r in odgt]
    result = tmp / "mmdet_result.json"
    result.write_text(json.dumps(mm))
    metric = metric_cls(ann_file=str(odgt_path), num_ji_process=2)
    samples = metric.load_eval_samples(str(result))
    scores = metric.compare(samples)
    gt_num = sum(s.gt_num for s in samples.values()) - sum(s.ign_num for s in samples.values())
    return {"crowd_human/mAP": metric.eval_ap(scores, gt_num, len(samples)),
            "crowd_human/mMR": metric.eval_mr(scores, gt_num, len(samples)),
            "crowd_human/JI": metric.eval_ji(samples)}


def main() -> None:
    cases = case_count(__doc__, 20)
    found = import_mmdet_without_ops("mmdet.evaluation.metrics.crowdhuman_metric")
    if found is None:
        sys.exit("MMDetection (peer) not available: nothing to compare")
    module = found[0]
    worst = 0.0
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        for seed in range(cases):
            odgt, sizes, dets = make_case(seed)
            path = tmp / "annotation_val.odgt"
            path.write_text("\n".join(json.dumps(r) for r in odgt) + "\n")
            (tmp / "id_hw_val.json").write_text(json.dumps(sizes))
            ref = reference(module.CrowdHumanMetric, path, odgt, sizes, dets, tmp)
            ours = crowdhuman_evaluate(load_crowdhuman(path), dets)
            diff = max(abs(float(ref[k]) - ours[k]) for k in ref)
            worst = max(worst, diff)
            print(f"case {seed}: {len(odgt)} images, {len(dets)} dets: mAP {ours['crowd_human/mAP']:.6f} "
                  f"(mmdet {ref['crowd_human/mAP']:.6f}), mMR {ours['crowd_human/mMR']:.6f} "
                  f"({ref['crowd_human/mMR']:.6f}), JI {ours['crowd_human/JI']:.6f} ({ref['crowd_human/JI']:.6f}), "
                  f"max |diff| {diff:.3g}")
    print(f"largest difference over {cases} cases: {worst:.3g}")
    sys.exit(0 if worst < 1e-12 else 1)


if __name__ == "__main__":
    main()
