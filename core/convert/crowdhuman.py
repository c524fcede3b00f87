"""CrowdHuman (`annotation_{train,val}.odgt` + `{train,val}/Images/*.jpg`) -> COCO JSON.

As MMDetection's crowdhuman2coco writes it: `crowdhuman_{mode}.json`, one category
`{id: 1, name: pedestrian}`, image `file_name` = `Images/{ID}.jpg` (relative to ROOT/{mode}),
ids from 1, `bbox` = the full-body box `fbox` (xywh), `vis_bbox` = the visible box `vbox`,
`area` = w * h, `iscrowd` = true where `extra.ignore == 1` (crowd/mask regions).
"""
from __future__ import annotations

import json
from pathlib import Path

from det.core.convert.common import (
    check_box, image_size, parallel_map, plan_outputs, present_modes, require_dir, summary, warn, write_json,
)
from det.core.errors import DataError

MODES = ("train", "val")
CATEGORIES = [{"id": 1, "name": "pedestrian"}]


def read_odgt(path: Path) -> list[tuple[int, dict]]:
    """(line number, record) per non-empty line; a bad line names the file and line."""
    records = []
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}:{lineno}: invalid JSON ({exc.msg})") from None
            if not isinstance(record, dict) or "ID" not in record:
                raise DataError(f"{path}:{lineno}: record without an 'ID' field")
            if not isinstance(record.get("gtboxes", []), list):
                raise DataError(f"{path}:{lineno}: 'gtboxes' must be a list")
            records.append((lineno, record))
    return records


def _box(value: object, path: Path, lineno: int, key: str) -> list[float]:
    if not (isinstance(value, list) and len(value) == 4 and all(isinstance(v, (int, float)) for v in value)):
        raise DataError(f"{path}:{lineno}: gtboxes.{key}: expected [x, y, w, h], got {value!r}")
    check_box(value, f"{path}:{lineno}: gtboxes.{key}", allow_empty=True)
    return list(value)


def convert_mode(root: Path, mode: str, nproc: int) -> dict:
    odgt = root / f"annotation_{mode}.odgt"
    records = read_odgt(odgt)
    files = [str(root / mode / "Images" / f"{r['ID']}.jpg") for _, r in records]
    sizes = parallel_map(image_size, files, nproc, f"crowdhuman {mode}", min_parallel=1000)
    images, annotations = [], []
    for img_id, ((lineno, record), (width, height)) in enumerate(zip(records, sizes), 1):
        images.append({"file_name": f"Images/{record['ID']}.jpg", "height": height, "width": width, "id": img_id})
        for box in record.get("gtboxes", []):
            fbox = _box(box.get("fbox"), odgt, lineno, "fbox")
            vbox = _box(box.get("vbox", fbox), odgt, lineno, "vbox")
            extra = box.get("extra") or {}
            annotations.append({
                "id": len(annotations) + 1, "image_id": img_id, "category_id": 1, "vis_bbox": vbox,
                "bbox": fbox, "area": fbox[2] * fbox[3], "iscrowd": bool(extra.get("ignore") == 1),
            })
    return {"categories": [dict(c) for c in CATEGORIES], "images": images, "annotations": annotations}


def convert_crowdhuman(root: str | Path, out_dir: str | Path, nproc: int = 1, force: bool = False) -> list[dict]:
    root = require_dir(root, "CrowdHuman root")
    modes = present_modes(MODES, lambda m: root / f"annotation_{m}.odgt",
                          f"{root}: no annotation_train.odgt or annotation_val.odgt")
    paths = plan_outputs([Path(out_dir) / f"crowdhuman_{m}.json" for m in modes], force)
    rows = []
    for mode, path in zip(modes, paths):
        coco = convert_mode(root, mode, nproc)
        write_json(path, coco)
        rows.append(summary(path, split=mode, images=len(coco["images"]), annotations=len(coco["annotations"])))
    return rows
