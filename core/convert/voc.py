"""Pascal VOC (VOCdevkit with VOC2007 and/or VOC2012) -> COCO JSON per year and split.

What is written follows MMDetection's converter: files `voc07_{train,val,trainval,test}.json`,
`voc12_{train,val,trainval}.json` (+ test when present) and `voc0712_{train,val,trainval}.json`
when both years exist; `file_name` = `VOC{year}/JPEGImages/{id}.jpg`; category ids 0..19 in
VOC's class order with `supercategory: none`; XML corners minus 1 (0-based), `bbox` =
[x1, y1, x2 - x1, y2 - y1], `area` = w * h and a 4-point box polygon as `segmentation`. Boxes
marked `difficult` are kept as ignore regions: `iscrowd: 1` and `ignore: 1` (pycocotools skips
them when matching, as VOC's evaluation does).
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from functools import partial
from pathlib import Path

from det.core.convert.common import (
    check_box,
    number,
    parallel_map,
    plan_outputs,
    read_class_names,
    read_lines,
    require_dir,
    summary,
    warn,
    write_json,
)
from det.core.errors import DataError
from det.core.fileio import read_xml

VOC_CLASSES = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
)
SPLITS = ("train", "val", "trainval")


def _text(node: ET.Element, tag: str, xml_path: str, where: str) -> str:
    child = node.find(tag)
    if child is None or child.text is None or not child.text.strip():
        raise DataError(f"{xml_path}: missing <{tag}> in {where}")
    return child.text.strip()


def parse_xml(item: tuple[str, str], classes: tuple[str, ...] = VOC_CLASSES) -> dict:
    """One annotation file -> {'file_name', 'width', 'height', 'objects': [(label, xyxy, difficult)]}."""
    xml_path, file_name = item
    root = read_xml(xml_path, "annotation file", DataError)
    size = root.find("size")
    if size is None:
        raise DataError(f"{xml_path}: missing <size>")
    try:
        width = int(float(_text(size, "width", xml_path, "<size>")))
        height = int(float(_text(size, "height", xml_path, "<size>")))
    except (ValueError, OverflowError):
        raise DataError(f"{xml_path}: <size> width/height are not numbers") from None
    if width <= 0 or height <= 0:
        raise DataError(f"{xml_path}: <size> width and height must be positive, got {width}x{height}")
    label_ids = {name: i for i, name in enumerate(classes)}
    objects = []
    for index, obj in enumerate(root.findall("object")):
        where = f"object {index}"
        name = _text(obj, "name", xml_path, where)
        if name not in label_ids:
            raise DataError(f"{xml_path}: {where}: unknown class '{name}' (pass --classes for custom classes)")
        difficult_node = obj.find("difficult")
        difficult = bool(int(difficult_node.text)) if difficult_node is not None and difficult_node.text else False
        box = obj.find("bndbox")
        if box is None:
            raise DataError(f"{xml_path}: {where}: missing <bndbox>")
        try:
            xyxy = [float(_text(box, k, xml_path, where)) - 1 for k in ("xmin", "ymin", "xmax", "ymax")]
        except ValueError:
            raise DataError(f"{xml_path}: {where}: <bndbox> values are not numbers") from None
        check_box([xyxy[0], xyxy[1], xyxy[2] - xyxy[0], xyxy[3] - xyxy[1]], f"{xml_path}: {where}: <bndbox>",
                  allow_empty=True)
        objects.append((label_ids[name], xyxy, difficult))
    return {"file_name": file_name, "width": width, "height": height, "objects": objects}


def to_coco(records: list[dict], classes: tuple[str, ...]) -> dict:
    """Records -> COCO dict; non-difficult boxes of an image first, then its difficult ones."""
    images, annotations = [], []
    seen: set[str] = set()
    for img_id, record in enumerate(records):
        if record["file_name"] in seen:
            raise DataError(f"{record['file_name']}: listed twice in the split files")
        seen.add(record["file_name"])
        images.append({"id": img_id, "file_name": record["file_name"], "height": record["height"], "width": record["width"]})
        ordered = [o for o in record["objects"] if not o[2]] + [o for o in record["objects"] if o[2]]
        for label, (x1, y1, x2, y2), difficult in ordered:
            w, h = x2 - x1, y2 - y1
            annotations.append({
                "segmentation": [[number(x1), number(y1), number(x1), number(y2), number(x2), number(y2), number(x2), number(y1)]],
                "area": number(w * h),
                "iscrowd": int(difficult),
                "ignore": int(difficult),
                "image_id": img_id,
                "bbox": [number(x1), number(y1), number(w), number(h)],
                "category_id": label,
                "id": len(annotations),
            })
    categories = [{"supercategory": "none", "id": i, "name": name} for i, name in enumerate(classes)]
    return {"images": images, "type": "instance", "categories": categories, "annotations": annotations}


def _split_items(devkit: Path, year: str, split: str) -> list[tuple[str, str]] | None:
    listing = devkit / f"VOC{year}" / "ImageSets" / "Main" / f"{split}.txt"
    if not listing.is_file():
        return None
    ids = [line.split()[0] for line in read_lines(listing, "VOC split list")]
    return [(str(devkit / f"VOC{year}" / "Annotations" / f"{i}.xml"), f"VOC{year}/JPEGImages/{i}.jpg") for i in ids]


def convert_voc(devkit: str | Path, out_dir: str | Path | None = None, classes_file: str | Path | None = None,
                nproc: int = 1, force: bool = False) -> list[dict]:
    """Convert every year/split found in DEVKIT; returns one summary row per file written."""
    devkit = require_dir(devkit, "VOCdevkit folder")
    classes = tuple(read_class_names(classes_file)) if classes_file else VOC_CLASSES
    years = [y for y in ("2007", "2012") if (devkit / f"VOC{y}").is_dir()]
    if not years:
        raise DataError(f"{devkit}: contains neither a VOC2007 nor a VOC2012 folder")
    jobs: list[tuple[str, list[str], str]] = []  # (output name, years, split)
    for year in years:
        prefix = "voc07" if year == "2007" else "voc12"
        jobs += [(f"{prefix}_{s}", [year], s) for s in (*SPLITS, "test")]
    if len(years) == 2:
        jobs += [(f"voc0712_{s}", list(years), s) for s in SPLITS]
    planned, skipped = [], []
    for name, job_years, split in jobs:
        parts = [_split_items(devkit, y, split) for y in job_years]
        if any(p is None for p in parts):
            skipped.append(name)
            continue
        planned.append((name, [item for p in parts for item in p]))
    if skipped:
        warn(f"{devkit}: no ImageSets/Main list for {', '.join(skipped)}; skipped")
    if not planned:
        raise DataError(f"{devkit}: no ImageSets/Main/{{train,val,trainval,test}}.txt split lists found")
    out = Path(out_dir) if out_dir is not None else devkit / "annotations"
    paths = plan_outputs([out / f"{name}.json" for name, _ in planned], force)
    # Each XML is parsed once even when it appears in several splits (trainval, voc0712, ...).
    unique = list(dict.fromkeys(item for _, items in planned for item in items))
    parsed = dict(zip(unique, parallel_map(partial(parse_xml, classes=classes), unique, nproc, "voc annotations",
                                            min_parallel=1000)))
    rows = []
    for (name, items), path in zip(planned, paths):
        coco = to_coco([parsed[item] for item in items], classes)
        write_json(path, coco)
        rows.append(summary(path, split=name, images=len(coco["images"]), annotations=len(coco["annotations"])))
    return rows
