"""WIDER Face in PASCAL VOC XML form (the layout of sovrasov/wider-face-pascal-voc-annotations,
as MMDetection's WIDERFaceDataset reads it): `ann_file` lists image ids, `<prefix>/Annotations/<id>.xml`
holds each image's faces and its `<folder>`, the image is `<prefix>/<folder>/<id>.jpg`."""
from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from det.core.data.datasets.voc import VOCDataset
from det.core.errors import DataError


class WIDERFaceDataset(VOCDataset):
    """One class `face`; coordinates as in the XML (no 1 subtracted, as MMDetection); `difficult`
    faces and, with `bbox_min_size`, faces narrower or lower than it are kept as ignored."""

    def __init__(self, ann_file: str, data_root: str = "", data_prefix: Any = "", bbox_min_size: float | None = None,
                 classes: Sequence[str] | None = None, palette: Sequence[Sequence[int]] | None = None,
                 pipeline: list | None = None, filter_empty_gt: bool = True, min_size: int = 0,
                 test_mode: bool = False, max_refetch: int = 100) -> None:
        if classes is not None and tuple(classes) != ("face",):
            raise DataError(f"{ann_file}: WIDER Face has the one class 'face', got classes {list(classes)}")
        self.bbox_min_size = bbox_min_size
        super().__init__(ann_file, data_root=data_root, data_prefix=data_prefix, classes=("face",),
                         palette=palette or [(0, 255, 0)], pipeline=pipeline, filter_empty_gt=filter_empty_gt,
                         min_size=min_size, test_mode=test_mode, minus_one=False)

    def _parse(self, xml_path: str, name: str, img_id: int, cat2label: dict[str, int]) -> dict:
        info = super()._parse(xml_path, name, img_id, cat2label)
        if not info.get("folder"):
            raise DataError(f"{xml_path}: no <folder> naming the image's event folder")
        info["img_path"] = os.path.join(self.sub_root, info["folder"], f"{name}{self.img_suffix}")
        if self.bbox_min_size is not None:
            for inst in info["instances"]:
                x1, y1, x2, y2 = inst["bbox"]
                if x2 - x1 < self.bbox_min_size or y2 - y1 < self.bbox_min_size:
                    inst["ignore_flag"] = True
        return info
