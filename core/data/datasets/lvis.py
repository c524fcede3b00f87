"""LVIS v1 (COCO-format JSON with federated class lists; images named by their COCO URL)."""
from __future__ import annotations

from typing import Any

from det.core.data.datasets.coco import CocoDataset
from det.core.errors import DataError

COCO_URL = "http://images.cocodataset.org/"


class LVISV1Dataset(CocoDataset):
    """LVIS v1 annotations: like CocoDataset, with each image's path taken from its `coco_url`
    (`train2017/000000391895.jpg` under `data_prefix`, as MMDetection's LVISV1Dataset does) when it
    has no `file_name`. `coco_gt()` keeps the categories' `frequency` and the images'
    `neg_category_ids` / `not_exhaustive_category_ids` that LVISMetric needs."""

    def load_raw(self) -> Any:
        raw = super().load_raw()
        for img in raw.get("images", []) if isinstance(raw, dict) else []:
            if "file_name" not in img:
                if "coco_url" not in img:
                    raise DataError(f"{self.ann_file}: image {img.get('id', '?')} has neither 'file_name' nor 'coco_url'")
                img["file_name"] = str(img["coco_url"]).replace(COCO_URL, "")
        return raw

    def coco_gt(self) -> dict:
        gt = super().coco_gt()
        by_id = {int(c["id"]): c for c in (self._raw or {}).get("categories", [])}
        gt["categories"] = [{**by_id.get(c["id"], {}), **c} for c in gt["categories"]]
        return gt
