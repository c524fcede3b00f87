"""Open Images (v6 layout): box CSV with normalised coordinates, class descriptions CSV
(MID, name), the class hierarchy JSON and, for evaluation, human-verified image-level labels.

Files as published (MMDetection's OpenImagesDataset reads the same):
- boxes: `ImageID,Source,LabelName,Confidence,XMin,XMax,YMin,YMax,IsOccluded,IsTruncated,IsGroupOf,
  IsDepiction,IsInside` with a header line; an image's rows are consecutive;
- classes: `MID,name` lines without header; a class's label is its line index;
- hierarchy: `{"LabelName": ..., "Subcategory": [{"LabelName": ..., "Subcategory": [...]}, ...]}`;
- image-level labels: `ImageID,Source,LabelName,Confidence` with a header (positive and negative).
Image sizes come from a JSON {ImageID: [height, width]} (`meta_file`) or the image headers.
"""
from __future__ import annotations

import csv
import io
import math
import os
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from det.core.data.datasets.base import BaseDetDataset, image_prefix
from det.core.data.datasets.crowdhuman import image_sizes
from det.core.errors import DataError
from det.core.fileio import read_json, read_text

FLAGS = ("is_occluded", "is_truncated", "is_group_of", "is_depiction", "is_inside")


def _rows(path: str | Path, what: str, header: bool) -> list[tuple[int, list[str]]]:
    """(line number, fields) of a CSV file, header skipped, blank lines left out."""
    text = read_text(path, what, DataError)
    try:
        rows = list(enumerate(csv.reader(io.StringIO(text)), 1))
    except csv.Error as exc:
        raise DataError(f"{path}: malformed CSV ({exc})") from None
    return [(n, r) for n, r in rows[1 if header else 0:] if r and any(f.strip() for f in r)]


def read_class_file(path: str | Path) -> tuple[list[str], list[str]]:
    """(MIDs, names) in file order."""
    mids, names = [], []
    for number, row in _rows(path, "Open Images class description CSV", header=False):
        if len(row) < 2:
            raise DataError(f"{path}:{number}: expected 'MID,name', got {','.join(row)!r:.60}")
        mids.append(row[0].strip())
        names.append(row[1].strip())
    if not mids:
        raise DataError(f"{path}: no classes")
    return mids, names


def relation_matrix(path: str | Path, mid_index: dict[str, int]) -> np.ndarray:
    """(C, C) with [child, ancestor] = 1 for every ancestor in the hierarchy (and the diagonal)."""
    tree = read_json(path, "Open Images hierarchy JSON")
    matrix = np.eye(len(mid_index))

    def walk(node: Any, ancestors: list[int]) -> None:
        subs = node.get("Subcategory", []) if isinstance(node, dict) else []
        for child in subs if isinstance(subs, list) else []:
            if not isinstance(child, dict) or "LabelName" not in child:
                continue
            if child["LabelName"] not in mid_index:
                raise DataError(f"{path}: hierarchy label '{child['LabelName']}' is not in the class description file")
            index = mid_index[child["LabelName"]]
            matrix[index, ancestors] = 1
            walk(child, [index, *ancestors])

    if not isinstance(tree, dict):
        raise DataError(f"{path}: expected a JSON object with 'LabelName' and 'Subcategory'")
    walk(tree, [])
    return matrix


def _box_row(row: list[str], where: str, mid_index: dict[str, int]) -> tuple[str, dict]:
    if len(row) < 13:
        raise DataError(f"{where}: expected 13 columns (ImageID,Source,LabelName,Confidence,XMin,XMax,YMin,YMax,"
                        f"IsOccluded,IsTruncated,IsGroupOf,IsDepiction,IsInside), got {len(row)}")
    if row[2] not in mid_index:
        raise DataError(f"{where}: LabelName '{row[2]}' is not in the class description file")
    try:
        xmin, xmax, ymin, ymax = (float(v) for v in row[4:8])
        flags = [int(v) == 1 for v in row[8:13]]
    except ValueError:
        raise DataError(f"{where}: XMin,XMax,YMin,YMax must be numbers and the Is* flags integers") from None
    if not all(math.isfinite(v) for v in (xmin, xmax, ymin, ymax)):
        raise DataError(f"{where}: non-finite coordinate")
    inst = {"bbox": [xmin, ymin, xmax, ymax], "bbox_label": mid_index[row[2]], "ignore_flag": False}
    inst.update(zip(FLAGS, flags))
    return row[0], inst


def read_box_file(path: str | Path, mid_index: dict[str, int]) -> dict[str, list[dict]]:
    """Instances (normalised x1y1x2y2) per ImageID, images in order of first appearance."""
    images: dict[str, list[dict]] = {}
    for number, row in _rows(path, "Open Images box CSV", header=True):
        image_id, inst = _box_row(row, f"{path}:{number}", mid_index)
        images.setdefault(image_id, []).append(inst)
    if not images:
        raise DataError(f"{path}: no boxes")
    return images


def read_image_labels(path: str | Path, mid_index: dict[str, int]) -> dict[str, list[tuple[int, float]]]:
    """(label, confidence) per ImageID of the human-verified image-level labels."""
    out: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for number, row in _rows(path, "Open Images image-level label CSV", header=True):
        where = f"{path}:{number}"
        if len(row) < 4:
            raise DataError(f"{where}: expected ImageID,Source,LabelName,Confidence")
        if row[2] not in mid_index:
            raise DataError(f"{where}: LabelName '{row[2]}' is not in the class description file")
        try:
            out[row[0]].append((mid_index[row[2]], float(row[3])))
        except ValueError:
            raise DataError(f"{where}: Confidence must be a number, got {row[3]!r:.20}") from None
    return out


def load_openimages(ann_file: str | Path, label_file: str | Path, hierarchy_file: str | Path,
                    image_level_ann_file: str | Path | None, meta_file: str | Path | None,
                    img_dir: str | Path) -> tuple[list[str], list[str], np.ndarray, list[dict]]:
    """(MIDs, names, relation matrix, records with pixel boxes and image-level labels)."""
    mids, names = read_class_file(label_file)
    mid_index = {m: i for i, m in enumerate(mids)}
    relation = relation_matrix(hierarchy_file, mid_index)
    boxes = read_box_file(ann_file, mid_index)
    labels = read_image_labels(image_level_ann_file, mid_index) if image_level_ann_file else None
    sizes = image_sizes(list(boxes), meta_file, img_dir)
    records = []
    for k, (image_id, instances) in enumerate(boxes.items()):
        h, w = sizes[image_id]
        for inst in instances:
            x1, y1, x2, y2 = inst["bbox"]
            inst["bbox"] = [x1 * w, y1 * h, x2 * w, y2 * h]
        rec = {"img_path": os.path.join(str(img_dir), f"{image_id}.jpg"), "file_name": f"{image_id}.jpg",
               "img_id": k, "image_name": image_id, "height": h, "width": w, "instances": instances}
        if labels is not None:
            rec["image_level_labels"] = np.array([lab for lab, _ in labels.get(image_id, [])], np.int64)
            rec["confidences"] = np.array([c for _, c in labels.get(image_id, [])], np.float32)
        records.append(rec)
    return mids, names, relation, records


class OpenImagesDataset(BaseDetDataset):
    """Open Images v6 read from its CSV/JSON files (paths relative to `data_root`), as MMDetection's
    OpenImagesDataset: classes are the lines of `label_file`, boxes are scaled to pixels,
    `is_group_of` and the other flags are kept per instance, `image_level_labels` (all verified
    labels, positive and negative) per image. `meta_file`: JSON {ImageID: [height, width]}
    (MMDetection's is a pickle, which det does not read); without it the image headers are read.
    `relation_matrix` holds the hierarchy for OpenImagesMetric."""

    def __init__(self, ann_file: str, label_file: str, hierarchy_file: str, data_root: str = "",
                 data_prefix: Any = "", image_level_ann_file: str | None = None, meta_file: str | None = None,
                 classes: Sequence[str] | None = None, palette: Sequence[Sequence[int]] | None = None,
                 pipeline: list | None = None, filter_empty_gt: bool = True, min_size: int = 0,
                 test_mode: bool = False, max_refetch: int = 100) -> None:
        self.data_root = str(data_root or "")
        join = lambda p: os.path.join(self.data_root, p) if p else None  # noqa: E731
        self.ann_file, self.label_file, self.hierarchy_file = join(ann_file), join(label_file), join(hierarchy_file)
        self.image_level_ann_file, self.meta_file = join(image_level_ann_file), join(meta_file)
        self.img_prefix = image_prefix(self.data_root, data_prefix)
        if classes is not None:
            raise DataError(f"{self.ann_file}: Open Images classes come from label_file; 'classes' cannot select a subset")
        super().__init__(pipeline=pipeline, classes=None, palette=palette, filter_empty_gt=filter_empty_gt,
                         min_size=min_size, test_mode=test_mode, max_refetch=max_refetch)

    def load_data_list(self) -> list[dict]:
        self.mids, names, self.relation_matrix, records = load_openimages(
            self.ann_file, self.label_file, self.hierarchy_file, self.image_level_ann_file, self.meta_file,
            self.img_prefix)
        self.classes = tuple(names)
        self._all = records
        return list(records)

    def eval_images(self) -> list[dict]:
        """Every image of the box file (what OpenImagesMetric scores; img_id = index)."""
        return self._all
