"""det's middle format for custom data: a JSON list of
`{filename, width, height, instances: [{bbox: [x1, y1, x2, y2], label, ignore?, mask?}]}`.
`label` is a class index or a class name; `mask` is COCO polygons or RLE."""
from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from det.core.data.datasets.base import BaseDetDataset, image_prefix
from det.core.errors import DataError
from det.core.fileio import read_json


class CustomDataset(BaseDetDataset):
    """Middle-format JSON (`ann_file`) with images under `data_root/data_prefix`. Classes come
    from `classes`; when omitted, labels must be names and the classes are their sorted set."""

    def __init__(self, ann_file: str, data_root: str = "", data_prefix: Any = "", classes: Sequence[str] | None = None,
                 palette: Sequence[Sequence[int]] | None = None, pipeline: list | None = None,
                 filter_empty_gt: bool = True, min_size: int = 0, test_mode: bool = False, max_refetch: int = 100) -> None:
        self.data_root = str(data_root or "")
        self.ann_file = os.path.join(self.data_root, ann_file)
        self.img_prefix = image_prefix(self.data_root, data_prefix)
        super().__init__(pipeline=pipeline, classes=classes, palette=palette, filter_empty_gt=filter_empty_gt,
                         min_size=min_size, test_mode=test_mode, max_refetch=max_refetch)

    def load_data_list(self) -> list[dict]:
        raw = read_json(self.ann_file, "annotation file")
        if not isinstance(raw, list):
            raise DataError(f"{self.ann_file}: expected a JSON list of images")
        if self._requested_classes is not None:
            self.classes = tuple(self._requested_classes)
        else:
            names = set()
            for entry in raw:
                for inst in entry.get("instances", []) if isinstance(entry, dict) else []:
                    if not isinstance(inst.get("label"), str):
                        raise DataError(f"{self.ann_file}: integer labels need 'classes' in the dataset config")
                    names.add(inst["label"])
            self.classes = tuple(sorted(names))
        index = {c: i for i, c in enumerate(self.classes)}
        data = []
        for k, entry in enumerate(raw):
            where = f"{self.ann_file}: image {k}"
            try:
                info = {"img_path": os.path.join(self.img_prefix, entry["filename"]), "file_name": entry["filename"],
                        "img_id": int(entry.get("id", k)), "width": int(entry["width"]), "height": int(entry["height"]),
                        "instances": []}
            except (KeyError, TypeError, ValueError):
                raise DataError(f"{where}: needs filename, width and height") from None
            for j, inst in enumerate(entry.get("instances", [])):
                label = inst.get("label")
                if isinstance(label, str):
                    if label not in index:
                        if self._requested_classes is not None:
                            continue  # a class outside the selected subset
                        raise DataError(f"{where}, instance {j}: unknown label '{label}'")
                    label = index[label]
                elif not isinstance(label, int) or not 0 <= label < len(self.classes):
                    raise DataError(f"{where}, instance {j}: label {label!r} is not a class index below {len(self.classes)}")
                bbox = inst.get("bbox")
                if not isinstance(bbox, list) or len(bbox) != 4:
                    raise DataError(f"{where}, instance {j}: bbox must be [x1, y1, x2, y2]")
                x1, y1, x2, y2 = (float(v) for v in bbox)
                if x2 <= x1 or y2 <= y1:
                    raise DataError(f"{where}, instance {j}: bbox {bbox} has no area (expected x1 < x2, y1 < y2)")
                out = {"bbox": [x1, y1, x2, y2], "bbox_label": label, "ignore_flag": bool(inst.get("ignore", False))}
                if inst.get("mask") is not None:
                    out["mask"] = inst["mask"]
                info["instances"].append(out)
            data.append(info)
        return data
