"""CrowdHuman: one JSON record per line of an `.odgt` file (`ID`, `gtboxes` with `fbox`, `vbox`,
`hbox` as [x, y, w, h], a `tag` and `extra.ignore`), images at `Images/<ID>.jpg`.

The files carry no image sizes: they come from MMDetection's `id_hw_{train,val}.json`
({ID: [height, width]}) when present, otherwise from the image headers.
"""
from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from det.core.data.datasets.base import BaseDetDataset, image_prefix
from det.core.errors import DataError
from det.core.fileio import read_json, read_text

BOX_KEYS = ("fbox", "vbox", "hbox")


def _box(item: Any, key: str, where: str) -> list[float]:
    box = item.get(key) if isinstance(item, dict) else None
    if not isinstance(box, list) or len(box) != 4 or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in box):
        raise DataError(f"{where}: '{key}' must be 4 finite numbers [x, y, w, h], got {box!r:.60}")
    return [float(v) for v in box]


def _ignored(item: dict) -> bool:
    extra = item.get("extra")
    return isinstance(extra, dict) and extra.get("ignore", 0) != 0


def _record(line: str, where: str, box_key: str) -> dict:
    try:
        rec = json.loads(line)
    except json.JSONDecodeError as exc:
        raise DataError(f"{where}: invalid JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(rec, dict) or not isinstance(rec.get("ID"), str) or not isinstance(rec.get("gtboxes"), list):
        raise DataError(f"{where}: an odgt record needs a string 'ID' and a 'gtboxes' list")
    boxes = []
    for k, item in enumerate(rec["gtboxes"]):
        at = f"{where}: gtboxes[{k}]"
        if not isinstance(item, dict) or not isinstance(item.get("tag"), str):
            raise DataError(f"{at}: needs a string 'tag'")
        boxes.append({"box": _box(item, box_key, at), "tag": item["tag"], "ignore": _ignored(item)})
    return {"ID": rec["ID"], "boxes": boxes}


def read_odgt(path: str | Path, box_key: str = "fbox") -> list[dict]:
    """Records {ID, boxes: [{box: [x, y, w, h], tag, ignore}]} of an odgt file, in file order;
    a malformed line is a DataError naming the file and line."""
    if box_key not in BOX_KEYS:
        raise DataError(f"CrowdHuman box '{box_key}': expected one of {', '.join(BOX_KEYS)}")
    records, seen = [], set()
    for number, line in enumerate(read_text(path, "CrowdHuman odgt file", DataError).splitlines(), 1):
        if not line.strip():
            continue
        rec = _record(line, f"{path}:{number}", box_key)
        if rec["ID"] in seen:
            raise DataError(f"{path}:{number}: duplicate ID '{rec['ID']}'")
        seen.add(rec["ID"])
        records.append(rec)
    if not records:
        raise DataError(f"{path}: no records (an odgt file has one JSON object per line)")
    return records


def image_sizes(ids: Sequence[str], sizes: str | Path | None, img_dir: str | Path) -> dict[str, tuple[int, int]]:
    """(height, width) per ID from an id_hw JSON ({ID: [h, w]}) or, without one, the image headers."""
    if sizes is not None:
        table = read_json(sizes, "image size file")
        if not isinstance(table, dict):
            raise DataError(f"{sizes}: expected a JSON object {{ID: [height, width]}}")
        missing = [i for i in ids if i not in table]
        if missing:
            raise DataError(f"{sizes}: no size for {len(missing)} image(s), e.g. '{missing[0]}'")
        try:
            return {i: (int(table[i][0]), int(table[i][1])) for i in ids}
        except (TypeError, ValueError, IndexError, KeyError):
            raise DataError(f"{sizes}: every entry must be [height, width]") from None
    return {i: _header_size(os.path.join(str(img_dir), f"{i}.jpg")) for i in ids}


def _header_size(path: str) -> tuple[int, int]:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            return img.size[1], img.size[0]
    except FileNotFoundError:
        raise DataError(f"{path}: image not found (and no size file to read its size from)") from None
    except (UnidentifiedImageError, OSError):
        raise DataError(f"{path}: not a readable image") from None


def default_sizes_file(ann_file: str | Path, data_root: str | Path) -> Path | None:
    """MMDetection's cache of image sizes beside the annotations: id_hw_train.json / id_hw_val.json."""
    name = Path(ann_file).name
    split = "train" if "train" in name else "val" if "val" in name else None
    path = Path(data_root or Path(ann_file).parent) / f"id_hw_{split}.json" if split else None
    return path if path is not None and path.is_file() else None


class CrowdHumanDataset(BaseDetDataset):
    """CrowdHuman read from its odgt file, as MMDetection's CrowdHumanDataset: class `person`;
    boxes of another tag (`mask`) or with `extra.ignore` are kept as ignored; `bbox` is the full
    body `fbox` (`box_key: vbox` or `hbox` trains on visible bodies or heads). Every record also
    keeps `fbox`, `vbox` and `hbox` (x1, y1, x2, y2) when the line has them. `extra_ann_file`:
    the id_hw JSON of image sizes (default: id_hw_{train,val}.json in `data_root` when present)."""

    def __init__(self, ann_file: str, data_root: str = "", data_prefix: Any = "Images/",
                 extra_ann_file: str | None = None, box_key: str = "fbox", classes: Sequence[str] | None = None,
                 palette: Sequence[Sequence[int]] | None = None, pipeline: list | None = None,
                 filter_empty_gt: bool = True, min_size: int = 0, test_mode: bool = False, max_refetch: int = 100) -> None:
        self.data_root = str(data_root or "")
        self.ann_file = os.path.join(self.data_root, ann_file)
        self.img_prefix = image_prefix(self.data_root, data_prefix)
        extra = os.path.join(self.data_root, extra_ann_file) if extra_ann_file else None
        self.extra_ann_file = extra or default_sizes_file(self.ann_file, self.data_root)
        self.box_key = box_key
        if classes is not None and tuple(classes) != ("person",):
            raise DataError(f"{self.ann_file}: CrowdHuman has the one class 'person', got classes {list(classes)}")
        super().__init__(pipeline=pipeline, classes=classes, palette=palette or [(220, 20, 60)],
                         filter_empty_gt=filter_empty_gt, min_size=min_size, test_mode=test_mode,
                         max_refetch=max_refetch)

    def load_data_list(self) -> list[dict]:
        self.classes = ("person",)
        self.records = read_odgt(self.ann_file, self.box_key)
        sizes = image_sizes([r["ID"] for r in self.records], self.extra_ann_file, self.img_prefix)
        self._all = [self._info(k, rec, sizes[rec["ID"]]) for k, rec in enumerate(self.records)]
        return list(self._all)

    def _info(self, index: int, rec: dict, size: tuple[int, int]) -> dict:
        instances = []
        for b in rec["boxes"]:
            x, y, w, h = b["box"]
            ignore = b["ignore"] or b["tag"] != "person"
            instances.append({"bbox": [x, y, x + w, y + h], "bbox_label": 0, "ignore_flag": ignore})
        return {"img_path": os.path.join(self.img_prefix, f"{rec['ID']}.jpg"), "file_name": f"{rec['ID']}.jpg",
                "img_id": index, "image_name": rec["ID"], "height": size[0], "width": size[1],
                "instances": instances}

    def eval_images(self) -> list[dict]:
        """What CrowdHumanMetric scores: every record of the file with its size (img_id = index)."""
        return [{"img_id": d["img_id"], "ID": rec["ID"], "height": d["height"], "width": d["width"],
                 "boxes": rec["boxes"]} for d, rec in zip(self._all, self.records)]

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state.pop("records", None)
        state.pop("_all", None)
        return state
