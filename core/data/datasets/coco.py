"""COCO-format detection / instance segmentation datasets."""
from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

from det.core.data.datasets.base import BaseDetDataset
from det.core.errors import DataError
from det.core.fileio import read_json
from det.core.log import get_logger


def _prefix(data_prefix: Any) -> str:
    if isinstance(data_prefix, dict):
        return str(data_prefix.get("img", data_prefix.get("img_path", "")) or "")
    return str(data_prefix or "")


class CocoDataset(BaseDetDataset):
    """Images and instances from a COCO JSON file.

    `data_root` prefixes a relative `ann_file` and image folder (`data_prefix`: a folder or
    MMDetection's `{img: folder}`). `classes` selects a subset by name (labels follow that
    order); otherwise every category in id order. `iscrowd` instances are ignored (kept with
    `ignore_flag`), boxes under 1 px or with no area are dropped. Masks (polygons or RLE) are
    kept as in the file and decoded by LoadAnnotations(with_mask=True).
    """

    def __init__(self, ann_file: str, data_root: str = "", data_prefix: Any = "", classes: Sequence[str] | None = None,
                 palette: Sequence[Sequence[int]] | None = None, pipeline: list | None = None,
                 filter_empty_gt: bool = True, min_size: int = 0, test_mode: bool = False, max_refetch: int = 100) -> None:
        self.data_root = str(data_root or "")
        self.ann_file = os.path.join(self.data_root, ann_file) if self.data_root and not os.path.isabs(ann_file) else str(ann_file)
        prefix = _prefix(data_prefix)
        self.img_prefix = os.path.join(self.data_root, prefix) if self.data_root and not os.path.isabs(prefix) else prefix
        self._raw: dict | None = None
        super().__init__(pipeline=pipeline, classes=classes, palette=palette, filter_empty_gt=filter_empty_gt,
                         min_size=min_size, test_mode=test_mode, max_refetch=max_refetch)

    def load_data_list(self) -> list[dict]:
        raw = read_json(self.ann_file, "COCO annotation file")
        if not isinstance(raw, dict):
            raise DataError(f"{self.ann_file}: expected a COCO JSON object with images/annotations/categories")
        for key in ("images", "categories"):
            if not isinstance(raw.get(key), list):
                raise DataError(f"{self.ann_file}: missing or invalid '{key}' list")
        raw.setdefault("annotations", [])
        self._raw = raw
        try:
            cats = sorted(raw["categories"], key=lambda c: int(c["id"]))
            name_to_id = {str(c["name"]): int(c["id"]) for c in cats}
        except (KeyError, TypeError, ValueError, OverflowError):
            raise DataError(f"{self.ann_file}: every category needs 'id' and 'name'") from None
        if not cats:
            raise DataError(f"{self.ann_file}: 'categories' is empty")
        if self._requested_classes is not None:
            unknown = [c for c in self._requested_classes if c not in name_to_id]
            if unknown:
                raise DataError(f"{self.ann_file}: classes {unknown} are not categories of this file "
                                f"(available: {', '.join(name_to_id)})")
            self.classes = tuple(self._requested_classes)
        else:
            self.classes = tuple(name_to_id)
        self._cat_ids = [name_to_id[c] for c in self.classes]
        cat2label = {cid: i for i, cid in enumerate(self._cat_ids)}

        infos = self._image_infos(raw["images"])
        known = {int(c["id"]) for c in cats}
        dropped = {"unknown category": 0, "invalid box": 0}
        for index, ann in enumerate(raw["annotations"]):
            where = f"{self.ann_file}: annotations[{index}] (id {ann.get('id', '?') if isinstance(ann, dict) else '?'})"
            try:
                cid, img_id = int(ann["category_id"]), int(ann["image_id"])
                x, y, w, h = (float(v) for v in ann["bbox"])
            except (KeyError, TypeError, ValueError):
                raise DataError(f"{where}: needs image_id, category_id and bbox [x, y, w, h]") from None
            if not all(math.isfinite(v) for v in (x, y, w, h)):
                raise DataError(f"{where}: bbox {ann['bbox']} has a non-finite number")
            if img_id not in infos:
                raise DataError(f"{where}: refers to unknown image_id {img_id}")
            if cid not in cat2label:
                dropped["unknown category"] += cid not in known
                continue
            info = infos[img_id]
            x1, y1 = max(0.0, x), max(0.0, y)
            x2, y2 = min(x + w, float(info["width"])), min(y + h, float(info["height"]))
            if ann.get("area", 1) <= 0 or w < 1 or h < 1 or x2 <= x1 or y2 <= y1:
                dropped["invalid box"] += 1
                continue
            inst = {"bbox": [x1, y1, x2, y2], "bbox_label": cat2label[cid], "ignore_flag": bool(ann.get("iscrowd", 0))}
            if ann.get("segmentation") is not None:
                inst["mask"] = ann["segmentation"]
            if "area" in ann:
                inst["area"] = float(ann["area"])
            inst["ann_id"] = ann.get("id")
            info["instances"].append(inst)
        self._report_dropped(dropped, infos)
        return list(infos.values())

    def _image_infos(self, images: list) -> dict[int, dict]:
        """`images` entries by id (in file order): unique ids, positive sizes."""
        infos: dict[int, dict] = {}
        for index, img in enumerate(images):
            where = f"{self.ann_file}: images[{index}]"
            try:
                img_id, width, height = int(img["id"]), int(img["width"]), int(img["height"])
                info = {"img_path": os.path.join(self.img_prefix, img["file_name"]), "file_name": img["file_name"],
                        "img_id": img_id, "width": width, "height": height, "instances": []}
            except (KeyError, TypeError, ValueError, OverflowError):
                raise DataError(f"{where}: image entry {img!r:.80} needs id, file_name, width, height") from None
            if width <= 0 or height <= 0:
                raise DataError(f"{where}: width and height must be positive, got {width}x{height}")
            if img_id in infos:
                raise DataError(f"{where}: duplicate image id {img_id}")
            infos[img_id] = info
        return infos

    def _report_dropped(self, dropped: dict[str, int], infos: dict[int, dict]) -> None:
        """Drops MMDetection makes silently are counted here; a file whose every box is
        dropped cannot train and is an error."""
        for what, count in dropped.items():
            if count:
                get_logger().warning(f"{self.ann_file}: {count} annotation(s) dropped: {what}")
        kept = sum(len(i["instances"]) for i in infos.values())
        if dropped["invalid box"] and not kept:
            raise DataError(f"{self.ann_file}: all {dropped['invalid box']} boxes are invalid (under 1 px, zero area "
                            "or outside the image); nothing to learn from")

    def coco_gt(self) -> dict:
        """The file's own annotations (original ids, areas, segmentations) restricted to this
        dataset's images and selected categories."""
        raw = self._raw or {}
        img_ids = {int(d["img_id"]) for d in self.data_list}
        cat_ids = set(self._cat_ids)
        return {
            "images": [dict(i) for i in raw.get("images", []) if int(i["id"]) in img_ids],
            "annotations": [_ann_with_area(a) for a in raw.get("annotations", [])
                            if int(a["image_id"]) in img_ids and int(a["category_id"]) in cat_ids],
            "categories": [{"id": int(c), "name": n} for c, n in zip(self._cat_ids, self.classes)],
        }

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_raw"] = None  # workers need the records, not the whole file
        return state


def _ann_with_area(ann: dict) -> dict:
    out = dict(ann)
    out.setdefault("iscrowd", 0)
    if "area" not in out:
        out["area"] = float(out["bbox"][2]) * float(out["bbox"][3])
    return out
