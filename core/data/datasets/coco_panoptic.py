"""COCO panoptic segmentation data: a panoptic JSON (images, annotations with `segments_info`,
categories with `isthing`) and one PNG of segment ids per image (id = R + 256 G + 256^2 B)."""
from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from det.core.data.datasets.coco import CocoDataset
from det.core.errors import DataError


def _seg_prefix(data_prefix: Any) -> str | None:
    if isinstance(data_prefix, dict):
        return data_prefix.get("seg")
    return None


class CocoPanopticDataset(CocoDataset):
    """Images with things and stuff segments (MMDetection's CocoPanopticDataset).

    Labels put every thing class before every stuff class (`num_things`), each group in
    category-id order unless `classes` chooses (things must still come first). A record holds
    `seg_map_path` and `segments_info` ([{id, category, category_id, is_thing, iscrowd, area,
    bbox}], `category` the label); `instances` are the thing segments (box from the JSON,
    `ignore_flag` = iscrowd, mask read from the PNG by LoadPanopticAnnotations). Segments of
    categories outside `classes` count as VOID. `data_prefix` is {img: folder, seg: folder};
    the PNG folder defaults to the annotation file without `.json`.
    """

    def __init__(self, ann_file: str, data_root: str = "", data_prefix: Any = "", classes: Sequence[str] | None = None,
                 palette: Sequence[Sequence[int]] | None = None, pipeline: list | None = None,
                 filter_empty_gt: bool = True, min_size: int = 0, test_mode: bool = False, max_refetch: int = 100) -> None:
        root = str(data_root or "")
        seg = _seg_prefix(data_prefix)
        ann_path = os.path.join(root, ann_file) if root and not os.path.isabs(ann_file) else str(ann_file)
        if seg is None:
            self.seg_prefix = os.path.splitext(ann_path)[0]
        else:
            self.seg_prefix = os.path.join(root, seg) if root and not os.path.isabs(seg) else str(seg)
        super().__init__(ann_file=ann_file, data_root=data_root, data_prefix=data_prefix, classes=classes,
                         palette=palette, pipeline=pipeline, filter_empty_gt=filter_empty_gt, min_size=min_size,
                         test_mode=test_mode, max_refetch=max_refetch)

    # -- loading ---------------------------------------------------------------------------
    def load_data_list(self) -> list[dict]:
        raw = self.load_raw()
        if not isinstance(raw, dict) or not isinstance(raw.get("images"), list) or not isinstance(raw.get("categories"), list):
            raise DataError(f"{self.ann_file}: expected a COCO panoptic JSON object with images and categories lists")
        raw.setdefault("annotations", [])
        if not isinstance(raw["annotations"], list):
            raise DataError(f"{self.ann_file}: 'annotations' must be a list")
        self._raw = raw
        cats = self._categories(raw["categories"])
        self._select_classes(cats)
        infos = self._image_infos(raw["images"])
        for info in infos.values():
            info.update(seg_map_path=None, segments_info=[], void_segment_ids=[])
        seen: set[int] = set()
        for index, ann in enumerate(raw["annotations"]):
            self._parse_annotation(index, ann, infos, cats, seen)
        return list(infos.values())

    def _categories(self, raw_cats: list) -> dict[int, dict]:
        cats: dict[int, dict] = {}
        for index, c in enumerate(raw_cats):
            try:
                cid, name, isthing = int(c["id"]), str(c["name"]), bool(c["isthing"])
            except (KeyError, TypeError, ValueError, OverflowError):
                raise DataError(f"{self.ann_file}: categories[{index}] needs 'id', 'name' and 'isthing'") from None
            if cid in cats:
                raise DataError(f"{self.ann_file}: categories[{index}]: duplicate category id {cid}")
            cats[cid] = {"id": cid, "name": name, "isthing": isthing}
        if not cats:
            raise DataError(f"{self.ann_file}: 'categories' is empty")
        return cats

    def _select_classes(self, cats: dict[int, dict]) -> None:
        ordered = sorted(cats.values(), key=lambda c: (not c["isthing"], c["id"]))
        by_name = {c["name"]: c for c in ordered}
        if self._requested_classes is not None:
            unknown = [n for n in self._requested_classes if n not in by_name]
            if unknown:
                raise DataError(f"{self.ann_file}: classes {unknown} are not categories of this file "
                                f"(available: {', '.join(by_name)})")
            ordered = [by_name[n] for n in self._requested_classes]
            flags = [c["isthing"] for c in ordered]
            if flags != sorted(flags, reverse=True):
                raise DataError(f"{self.ann_file}: classes must list every thing class before the stuff classes")
        self.classes = tuple(c["name"] for c in ordered)
        self._cat_ids = [c["id"] for c in ordered]
        self.num_things = sum(c["isthing"] for c in ordered)
        self.categories = [dict(c, isthing=int(c["isthing"])) for c in ordered]
        if len(self.classes) >= 255:
            raise DataError(f"{self.ann_file}: {len(self.classes)} classes; the semantic map holds at most 254 "
                            "(255 is the ignore value)")

    def _parse_annotation(self, index: int, ann: Any, infos: dict[int, dict], cats: dict[int, dict], seen: set) -> None:
        where = f"{self.ann_file}: annotations[{index}]"
        try:
            img_id, file_name, segments = int(ann["image_id"]), str(ann["file_name"]), list(ann["segments_info"])
        except (KeyError, TypeError, ValueError):
            raise DataError(f"{where}: needs image_id, file_name and a segments_info list") from None
        if img_id not in infos:
            raise DataError(f"{where}: refers to unknown image_id {img_id}")
        if img_id in seen:
            raise DataError(f"{where}: a second annotation for image_id {img_id}")
        seen.add(img_id)
        info = infos[img_id]
        info["seg_map_path"] = os.path.join(self.seg_prefix, file_name)
        if not os.path.isfile(info["seg_map_path"]):
            raise DataError(f"{where}: segment PNG {info['seg_map_path']} not found")
        cat2label = {cid: i for i, cid in enumerate(self._cat_ids)}
        ids: set[int] = set()
        for j, seg in enumerate(segments):
            record = self._segment(f"{where}.segments_info[{j}]", seg, cats, cat2label)
            if record["id"] in ids:
                raise DataError(f"{where}.segments_info[{j}]: duplicate segment id {record['id']}")
            ids.add(record["id"])
            if record["category"] is None:  # a category outside `classes`: VOID
                info["void_segment_ids"].append(record["id"])
                continue
            info["segments_info"].append(record)
            if record["is_thing"]:
                x, y, w, h = record["bbox"]
                info["instances"].append({"bbox": [x, y, x + w, y + h], "bbox_label": record["category"],
                                          "ignore_flag": bool(record["iscrowd"]), "mask": None,
                                          "segment_id": record["id"]})

    def _segment(self, where: str, seg: Any, cats: dict[int, dict], cat2label: dict[int, int]) -> dict:
        try:
            seg_id, cid = int(seg["id"]), int(seg["category_id"])
            bbox = [float(v) for v in seg.get("bbox", (0, 0, 0, 0))]
        except (KeyError, TypeError, ValueError):
            raise DataError(f"{where}: needs id and category_id") from None
        if cid not in cats:
            raise DataError(f"{where}: unknown category_id {cid} (not in 'categories')")
        if not 0 < seg_id < 256**3:
            raise DataError(f"{where}: segment id {seg_id} outside 1..16777215")
        return {"id": seg_id, "category_id": cid, "category": cat2label.get(cid), "is_thing": cats[cid]["isthing"],
                "iscrowd": int(bool(seg.get("iscrowd", 0))), "area": float(seg.get("area", 0)), "bbox": bbox}

    def _keep(self, info: dict) -> bool:
        if min(info["width"], info["height"]) < self.min_size:
            return False
        return not self.filter_empty_gt or any(not s["iscrowd"] for s in info["segments_info"])

    def coco_gt(self) -> dict:
        raise DataError(f"{self.ann_file}: a panoptic dataset has no COCO instance ground truth; "
                        "evaluate it with CocoPanopticMetric")
