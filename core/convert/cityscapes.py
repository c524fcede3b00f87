"""Cityscapes fine annotations -> COCO instance JSON, one file per split.

Follows MMDetection's converter for what it writes: `instancesonly_filtered_gtFine_{split}.json`,
image `file_name` = `{city}/{name}_leftImg8bit.png`, `segm_file` = the labelIds PNG, category ids =
Cityscapes label ids of the 8 evaluated instance classes, instance pixel ids >= 1000 are single
objects (label = id // 1000) and ids < 1000 are crowd regions (`iscrowd=1`); masks, boxes and
areas come from the pixels. When a frame has no `*_gtFine_instanceIds.png`, its
`*_gtFine_polygons.json` is rasterised the way cityscapesscripts' json2instanceImg does (objects
drawn in file order, `*group` labels as crowd).
"""
from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np

from det.core.convert.common import parallel_map, plan_outputs, require_dir, summary, warn, write_json
from det.core.errors import DataError

# Cityscapes label ids (cityscapesscripts/helpers/labels.py); -1 is never drawn.
LABEL_IDS: dict[str, int] = {
    "unlabeled": 0, "ego vehicle": 1, "rectification border": 2, "out of roi": 3, "static": 4,
    "dynamic": 5, "ground": 6, "road": 7, "sidewalk": 8, "parking": 9, "rail track": 10,
    "building": 11, "wall": 12, "fence": 13, "guard rail": 14, "bridge": 15, "tunnel": 16,
    "pole": 17, "polegroup": 18, "traffic light": 19, "traffic sign": 20, "vegetation": 21,
    "terrain": 22, "sky": 23, "person": 24, "rider": 25, "car": 26, "truck": 27, "bus": 28,
    "caravan": 29, "trailer": 30, "train": 31, "motorcycle": 32, "bicycle": 33, "license plate": -1,
}
# Classes with instances; caravan (29) and trailer (30) have instances but are ignored in evaluation.
HAS_INSTANCES = {24, 25, 26, 27, 28, 29, 30, 31, 32, 33}
CATEGORIES = [
    {"id": 24, "name": "person"}, {"id": 25, "name": "rider"}, {"id": 26, "name": "car"},
    {"id": 27, "name": "truck"}, {"id": 28, "name": "bus"}, {"id": 31, "name": "train"},
    {"id": 32, "name": "motorcycle"}, {"id": 33, "name": "bicycle"},
]
EVAL_IDS = {c["id"] for c in CATEGORIES}
SPLITS = ("train", "val", "test")
IMG_SUFFIX = "leftImg8bit.png"
OUT_NAME = "instancesonly_filtered_gtFine_{split}.json"


def collect_frames(img_dir: Path, gt_dir: Path) -> list[tuple[str, str, str, str]]:
    """(image, instanceIds png, polygons json, labelIds png) per image of one split."""
    frames = []
    for img in sorted(img_dir.glob("*/*.png")):
        if not img.name.endswith(IMG_SUFFIX):
            raise DataError(f"{img}: not a Cityscapes image name (expected '*_{IMG_SUFFIX}')")
        stem = str(gt_dir / img.relative_to(img_dir))[: -len(IMG_SUFFIX)]
        frames.append((str(img), stem + "gtFine_instanceIds.png", stem + "gtFine_polygons.json", stem + "gtFine_labelIds.png"))
    return frames


def rasterize_polygons(json_path: str) -> np.ndarray:
    """Instance-id image from a `*_gtFine_polygons.json` (cityscapesscripts' encoding)."""
    from PIL import Image, ImageDraw

    from det.core.fileio import read_json

    ann = read_json(json_path, "Cityscapes polygon file")
    try:
        width, height = int(ann["imgWidth"]), int(ann["imgHeight"])
        objects = ann["objects"]
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(f"{json_path}: missing or bad field {exc}") from None
    canvas = Image.new("I", (width, height), LABEL_IDS["unlabeled"])
    draw = ImageDraw.Draw(canvas)
    counts: dict[int, int] = {}
    for index, obj in enumerate(objects):
        if obj.get("deleted"):
            continue
        name = obj.get("label")
        group = False
        if name not in LABEL_IDS and isinstance(name, str) and name.endswith("group"):
            name, group = name[: -len("group")], True
        if name not in LABEL_IDS:
            raise DataError(f"{json_path}: objects[{index}].label: unknown Cityscapes label {obj.get('label')!r}")
        pixel = LABEL_IDS[name]
        if pixel in HAS_INSTANCES and not group:
            index_in_class = counts.get(pixel, 0)
            counts[pixel] = index_in_class + 1
            pixel = pixel * 1000 + index_in_class
        if pixel < 0:
            continue
        try:
            points = [(float(x), float(y)) for x, y in obj["polygon"]]
        except (KeyError, TypeError, ValueError):
            raise DataError(f"{json_path}: objects[{index}].polygon: expected a list of [x, y] points") from None
        if len(points) >= 2:
            draw.polygon(points, fill=pixel)
    return np.asarray(canvas, dtype=np.int32)


def load_instance_ids(inst_png: str, poly_json: str) -> np.ndarray:
    import cv2

    if Path(inst_png).is_file():
        img = cv2.imread(inst_png, cv2.IMREAD_UNCHANGED)
        if img is None or img.ndim != 2:
            raise DataError(f"{inst_png}: cannot read as a single-channel instance-id PNG")
        return img.astype(np.int32)
    if Path(poly_json).is_file():
        return rasterize_polygons(poly_json)
    raise DataError(f"{inst_png}: instance-id PNG not found (and no {Path(poly_json).name} beside it)")


def mask_polygons(mask: np.ndarray) -> list[list[float]]:
    """Outer contours of a binary mask as COCO polygons (pixel-corner coordinates)."""
    import cv2

    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    polys = []
    for contour in contours:
        flat = contour.reshape(-1).astype(float).tolist()
        if len(flat) >= 6:
            polys.append(flat)
    return polys


def convert_frame(frame: tuple[str, str, str, str], mask_format: str = "rle") -> dict:
    """One image's record with its annotations (ids assigned later)."""
    from pycocotools import mask as mask_utils

    img_file, inst_png, poly_json, segm_png = frame
    ids = load_instance_ids(inst_png, poly_json)
    annotations = []
    for inst_id in np.unique(ids[ids >= 24]):
        label_id = int(inst_id // 1000) if inst_id >= 1000 else int(inst_id)
        if label_id not in EVAL_IDS:
            continue
        mask = np.asfortranarray((ids == inst_id).astype(np.uint8))
        rle = mask_utils.encode(mask)
        ann = {
            "iscrowd": int(inst_id < 1000),
            "category_id": label_id,
            "bbox": [float(v) for v in mask_utils.toBbox(rle)],
            "area": int(mask_utils.area(rle)),
        }
        if mask_format == "polygon":
            ann["segmentation"] = mask_polygons(np.ascontiguousarray(mask))
        else:
            ann["segmentation"] = {"size": [int(s) for s in rle["size"]], "counts": rle["counts"].decode("ascii")}
        annotations.append(ann)
    city = Path(img_file).parent.name
    return {
        "file_name": f"{city}/{Path(img_file).name}",
        "height": int(ids.shape[0]),
        "width": int(ids.shape[1]),
        "segm_file": f"{city}/{Path(segm_png).name}",
        "annotations": annotations,
    }


def to_coco(records: list[dict]) -> dict:
    images, annotations = [], []
    for img_id, record in enumerate(records):
        anns = record.pop("annotations")
        images.append({**record, "id": img_id})
        for ann in anns:
            annotations.append({**ann, "image_id": img_id, "id": len(annotations)})
    return {"images": images, "annotations": annotations, "categories": [dict(c) for c in CATEGORIES]}


def convert_cityscapes(root: str | Path, out_dir: str | Path | None = None, img_dir: str = "leftImg8bit",
                       gt_dir: str = "gtFine", nproc: int = 1, mask_format: str = "rle",
                       force: bool = False) -> list[dict]:
    """Convert every split present under ROOT/img_dir; returns one summary row per file written."""
    if mask_format not in ("rle", "polygon"):
        raise DataError(f"--mask-format: expected 'rle' or 'polygon', got {mask_format!r}")
    root = require_dir(root, "Cityscapes root")
    images_root = require_dir(root / img_dir, "Cityscapes image folder")
    gt_root = require_dir(root / gt_dir, "Cityscapes annotation folder")
    out = Path(out_dir) if out_dir is not None else root / "annotations"
    splits = [s for s in SPLITS if (images_root / s).is_dir()]
    if not splits:
        raise DataError(f"{images_root}: no split folder (train, val or test) found")
    outputs = plan_outputs([out / OUT_NAME.format(split=s) for s in splits], force)
    rows = []
    for split, path in zip(splits, outputs):
        frames = collect_frames(images_root / split, gt_root / split)
        if not frames:
            warn(f"{images_root / split}: no '*_{IMG_SUFFIX}' images; skipped")
            continue
        records = parallel_map(partial(convert_frame, mask_format=mask_format), frames, nproc, f"cityscapes {split}",
                               min_parallel=4)
        coco = to_coco(records)
        write_json(path, coco)
        rows.append(summary(path, split=split, images=len(coco["images"]), annotations=len(coco["annotations"])))
    return rows
