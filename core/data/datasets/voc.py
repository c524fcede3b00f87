"""Pascal VOC datasets (VOC2007 / VOC2012 layout): Annotations/*.xml, JPEGImages/, and an
ImageSets/Main split file listing image ids."""
from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from det.core.data.datasets.base import BaseDetDataset
from det.core.errors import DataError
from det.core.fileio import read_xml

VOC_CLASSES = ("aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
               "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train",
               "tvmonitor")


class VOCDataset(BaseDetDataset):
    """`ann_file` is the split file (e.g. VOC2007/ImageSets/Main/trainval.txt) relative to
    `data_root`; images and XML live under `data_root/data_prefix` (e.g. 'VOC2007/', or
    MMDetection's `{sub_data_root: VOC2007/}`) in `img_subdir` and `ann_subdir`.
    `difficult` objects are kept as ignored. Coordinates are 1-based in VOC files; with
    `minus_one` (default, like MMDetection) 1 is subtracted. Objects of classes outside
    `classes` are skipped (a subset remaps labels to its order)."""

    def __init__(self, ann_file: str, data_root: str = "", data_prefix: Any = "", img_subdir: str = "JPEGImages",
                 ann_subdir: str = "Annotations", classes: Sequence[str] | None = None,
                 palette: Sequence[Sequence[int]] | None = None, pipeline: list | None = None,
                 filter_empty_gt: bool = True, min_size: int = 0, test_mode: bool = False, minus_one: bool = True,
                 img_suffix: str = ".jpg", max_refetch: int = 100) -> None:
        self.data_root = str(data_root or "")
        self.ann_file = os.path.join(self.data_root, ann_file)
        if isinstance(data_prefix, dict):
            data_prefix = data_prefix.get("sub_data_root", data_prefix.get("img", ""))
        self.sub_root = os.path.join(self.data_root, str(data_prefix or ""))
        self.img_subdir, self.ann_subdir = img_subdir, ann_subdir
        self.minus_one = minus_one
        self.img_suffix = img_suffix
        super().__init__(pipeline=pipeline, classes=classes, palette=palette, filter_empty_gt=filter_empty_gt,
                         min_size=min_size, test_mode=test_mode, max_refetch=max_refetch)

    def load_data_list(self) -> list[dict]:
        self.classes = tuple(self._requested_classes) if self._requested_classes is not None else VOC_CLASSES
        cat2label = {c: i for i, c in enumerate(self.classes)}
        try:
            with open(self.ann_file, encoding="utf-8") as fh:
                ids = [line.split()[0] for line in fh if line.strip()]
        except FileNotFoundError:
            raise DataError(f"{self.ann_file}: VOC split file not found") from None
        data = []
        for k, name in enumerate(ids):
            xml_path = os.path.join(self.sub_root, self.ann_subdir, f"{name}.xml")
            data.append(self._parse(xml_path, name, k, cat2label))
        return data

    def _parse(self, xml_path: str, name: str, img_id: int, cat2label: dict[str, int]) -> dict:
        root = read_xml(xml_path, f"VOC annotation (listed in {self.ann_file})", DataError)
        filename = root.findtext("filename") or f"{name}{self.img_suffix}"
        img_path = os.path.join(self.sub_root, self.img_subdir, f"{name}{self.img_suffix}")
        size = root.find("size")
        if size is not None and size.findtext("width") and size.findtext("height"):
            width, height = int(float(size.findtext("width"))), int(float(size.findtext("height")))
        else:
            import cv2

            img = cv2.imread(img_path)
            if img is None:
                raise DataError(f"{xml_path}: no <size> and the image {img_path} cannot be read")
            height, width = img.shape[:2]
        instances = []
        for obj in root.findall("object"):
            cls = (obj.findtext("name") or "").strip()
            if cls not in cat2label:
                continue
            box = obj.find("bndbox")
            try:
                coords = [float(box.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax")]
            except (AttributeError, TypeError, ValueError):
                raise DataError(f"{xml_path}: object '{cls}' has no valid <bndbox>") from None
            if self.minus_one:
                coords = [c - 1 for c in coords]
            difficult = obj.findtext("difficult")
            instances.append({"bbox": coords, "bbox_label": cat2label[cls],
                              "ignore_flag": bool(int(float(difficult))) if difficult else False})
        return {"img_path": img_path, "file_name": filename, "img_id": img_id, "xml_path": xml_path, "image_name": name,
                "width": width, "height": height, "instances": instances, "folder": root.findtext("folder")}
