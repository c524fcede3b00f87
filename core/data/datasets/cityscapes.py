"""Cityscapes instances from the COCO JSON `det convert cityscapes` writes
(`instancesonly_filtered_gtFine_{split}.json`: the 8 evaluated classes, category ids = Cityscapes
label ids, crowd regions as `iscrowd`, each image's `segm_file` naming its gtFine labelIds PNG)."""
from __future__ import annotations

from typing import Any

from det.core.data.datasets.coco import CocoDataset
from det.core.errors import DataError

CITYSCAPES_CLASSES = ("person", "rider", "car", "truck", "bus", "train", "motorcycle", "bicycle")


class CityscapesDataset(CocoDataset):
    """A CocoDataset over det's Cityscapes conversion (MMDetection's CityscapesDataset): the
    file's categories must be the 8 Cityscapes instance classes; images keep `segm_file`, from
    which CityscapesMetric finds the instanceIds PNG of each image."""

    def load_raw(self) -> Any:
        raw = super().load_raw()
        names = [c.get("name") for c in raw.get("categories", [])] if isinstance(raw, dict) else []
        unknown = [n for n in names if n not in CITYSCAPES_CLASSES]
        if unknown:
            raise DataError(f"{self.ann_file}: categories {unknown} are not Cityscapes instance classes "
                            f"({', '.join(CITYSCAPES_CLASSES)}); convert with `det convert cityscapes`")
        return raw
