"""Generated training logs in det's, MMDetection 3.x's and 2.x's formats (same run)."""
from __future__ import annotations

import json
from pathlib import Path

EPOCHS = 3
ITERS = 4  # logged records per epoch


def iter_time(ep: int, k: int) -> float:
    """Time of the k-th logged record of epoch `ep`; the first one is an outlier."""
    return 0.5 + 0.1 * ep + 0.01 * k + (1.0 if k == 0 else 0.0)


def loss(ep: int, k: int) -> float:
    return 2.0 / ep - 0.05 * k


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def scalars_records(with_mode: bool = False) -> list[dict]:
    """MMDetection 3.x scalars.json (det's log.jsonl adds `mode`)."""
    recs, step = [], 0
    for ep in range(1, EPOCHS + 1):
        for k in range(ITERS):
            step += 10
            r = {"lr": 0.01, "data_time": 0.01, "loss": loss(ep, k), "loss_cls": 1.0 / ep, "time": iter_time(ep, k),
                 "epoch": ep, "iter": step, "memory": 100, "step": step}
            recs.append({"mode": "train", **r} if with_mode else r)
        v = {"coco/bbox_mAP": 0.1 * ep, "coco/bbox_mAP_50": 0.2 * ep, "data_time": 0.1, "time": 9.0, "step": ep}
        recs.append({"mode": "val", **v} if with_mode else v)
    return recs


def v2_records() -> list[dict]:
    """MMDetection 2.x *.log.json: env line, then mode/epoch/iter records."""
    recs: list[dict] = [{"env_info": "sys.platform: linux", "config": "model = dict()", "seed": 0}]
    for ep in range(1, EPOCHS + 1):
        for k in range(ITERS):
            recs.append({"mode": "train", "epoch": ep, "iter": 10 * (k + 1), "lr": 0.01, "memory": 100,
                         "data_time": 0.01, "loss_cls": 1.0 / ep, "loss": loss(ep, k), "time": iter_time(ep, k)})
        recs.append({"mode": "val", "epoch": ep, "iter": 40, "lr": 0.01, "bbox_mAP": 0.1 * ep, "bbox_mAP_50": 0.2 * ep})
    return recs


def write_all(tmp: Path) -> dict[str, Path]:
    return {
        "det": write_jsonl(tmp / "log.jsonl", scalars_records(with_mode=True)),
        "mmdet3": write_jsonl(tmp / "scalars.json", scalars_records()),
        "mmdet2": write_jsonl(tmp / "20240101_000000.log.json", v2_records()),
    }
