"""The dataset base: a list of per-image records, class names, a palette, a pipeline, and the
COCO-format ground truth evaluators read.

A record (`get_data_info`) holds `img_path`, `img_id`, `width`, `height` and `instances`, a
list of `{bbox: [x1, y1, x2, y2], bbox_label: int, ignore_flag: bool, mask: polygons | RLE |
None}` (plus `area` when the source file has one).
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from torch.utils.data import Dataset

from det.core.errors import DataError
from det.core.vis.palette import get_palette


def image_prefix(data_root: str, data_prefix: Any) -> str:
    """The image folder of a dataset: `data_prefix` (a folder, or MMDetection's {img: folder})
    below `data_root`."""
    if isinstance(data_prefix, dict):
        data_prefix = data_prefix.get("img", "")
    return os.path.join(data_root, str(data_prefix or ""))


class BaseDetDataset(Dataset):
    """Subclasses set their source attributes, then call `super().__init__` which calls
    `load_data_list()` and applies the filters (not in `test_mode`)."""

    def __init__(self, pipeline: list | None = None, classes: Sequence[str] | None = None,
                 palette: Sequence[Sequence[int]] | None = None, filter_empty_gt: bool = True, min_size: int = 0,
                 test_mode: bool = False, max_refetch: int = 100) -> None:
        self.test_mode = test_mode
        self.filter_empty_gt = filter_empty_gt
        self.min_size = min_size
        self.max_refetch = max_refetch
        self._requested_classes = tuple(classes) if classes is not None else None
        self.data_list: list[dict] = self.load_data_list()
        if not hasattr(self, "classes"):
            raise DataError(f"{type(self).__name__}: the dataset defines no classes")
        if not test_mode:
            self.data_list = [d for d in self.data_list if self._keep(d)]
        self.palette = get_palette(len(self.classes), palette)
        self.pipeline = None
        self.set_pipeline(pipeline)

    # -- to implement ----------------------------------------------------------------------
    def load_data_list(self) -> list[dict]:  # pragma: no cover - abstract
        raise TypeError(f"{type(self).__name__} does not implement load_data_list()")

    # -- common ----------------------------------------------------------------------------
    ann_file: str | None = None

    @property
    def cat_ids(self) -> list[int]:
        """COCO category id of each label (label i <-> cat_ids[i])."""
        return getattr(self, "_cat_ids", list(range(1, len(self.classes) + 1)))

    def _keep(self, info: dict) -> bool:
        if min(info["width"], info["height"]) < self.min_size:
            return False
        if self.filter_empty_gt and not any(not i.get("ignore_flag", False) for i in info["instances"]):
            return False
        return True

    def set_pipeline(self, cfgs: list | None) -> None:
        """(Re)build the pipeline from a list of transform configs (or None for raw records)."""
        from det.core.data.transforms import Compose, build_pipeline

        if cfgs is None:
            self.pipeline = None
            return
        self.pipeline = cfgs if isinstance(cfgs, Compose) else build_pipeline(cfgs)
        self.pipeline.bind_dataset(self)

    def __len__(self) -> int:
        return len(self.data_list)

    def get_data_info(self, idx: int) -> dict:
        """A fresh copy of image `idx`'s record (instances are shared, never modified)."""
        info = dict(self.data_list[idx])
        info["sample_idx"] = idx
        return info

    def __getitem__(self, idx: int) -> Any:
        if self.pipeline is None:
            return self.get_data_info(idx)
        from det.core.data.transforms.rng import rng

        for _ in range(self.max_refetch + 1):
            out = self.pipeline(self.get_data_info(idx))
            if out is not None:
                return out
            if self.test_mode:
                raise DataError(f"{self.data_list[idx]['img_path']}: the pipeline rejected a test image")
            idx = int(rng().integers(len(self)))
        raise DataError(f"{type(self).__name__}: the pipeline rejected {self.max_refetch + 1} samples in a row; "
                        "check the transforms (e.g. RandomCrop size, FilterAnnotations)")

    def get_cat_ids(self, idx: int) -> set[int]:
        """Labels of the non-ignored instances of image `idx`."""
        return {int(i["bbox_label"]) for i in self.data_list[idx]["instances"] if not i.get("ignore_flag", False)}

    def coco_gt(self) -> dict:
        """The ground truth as a COCO dict (images, annotations, categories); ignored instances
        become `iscrowd: 1`. Category ids follow `cat_ids`."""
        from det.core.data.coco_gt import data_list_to_coco

        return data_list_to_coco(self.data_list, self.classes, self.cat_ids)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(num_images={len(self)}, classes={len(self.classes)}, test_mode={self.test_mode})"

    def metainfo(self) -> dict:
        return {"classes": tuple(self.classes), "palette": [tuple(p) for p in self.palette]}
