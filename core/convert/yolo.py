"""Ultralytics YOLO datasets <-> COCO JSON, both directions.

YOLO layout (Ultralytics): a `data.yaml` with `path` (dataset root, relative to the YAML's
folder), `train`/`val`/`test` (a folder of images, a .txt list of image paths, or a list of
those), and `names` (a list, or a mapping index -> name). The labels of `.../images/.../x.jpg`
are in `.../labels/.../x.txt`, one object per line: `class xc yc w h` normalised to [0, 1], or a
segment `class x1 y1 x2 y2 ...` (normalised polygon; its box is the polygon's extent).

yolo2coco writes `{split}.json` per split: category id = class index + 1 (COCO ids start at 1),
`file_name` relative to the dataset root, `bbox` in pixels (xywh), `area` = box area (boxes) or
the polygon's mask area from pycocotools (segments), `iscrowd: 0`; images without a label file
are kept with no annotations.

coco2yolo writes one label file per image (empty for images without objects) where Ultralytics
looks for it, `{split}.txt` (the image list the `data.yaml` split entry points to), `data.yaml`,
and links or copies of the images. An image keeps its path when it has an `images/` folder in it
(a dataset that came from YOLO), else it goes under `images/{split}/`. Categories are renumbered
0..K-1 in id order; crowd annotations are skipped (YOLO has no ignore regions); boxes are clipped
to the image. Numbers are written with 10 significant digits, so a round trip in either
direction reproduces coordinates to better than 1e-6.
"""
from __future__ import annotations

import math
import os
import shutil
from functools import partial
from pathlib import Path

import numpy as np
import yaml

from det.core.convert.common import (
    IMAGE_EXTENSIONS,
    image_size,
    parallel_map,
    plan_outputs,
    require_file,
    summary,
    warn,
    write_json,
    write_text,
)
from det.core.config.loader import safe_load_bounded
from det.core.errors import DataError
from det.core.fileio import inside, plain_name, read_json, read_text

SPLITS = ("train", "val", "test")
DIGITS = 10


# ------------------------------------------------------------------------------- data.yaml


def read_data_yaml(path: str | Path) -> tuple[Path, list[str], dict[str, list[str]]]:
    """-> (dataset root, class names, {split: [source entries]})."""
    path = require_file(path, "YOLO data.yaml")
    try:
        data = safe_load_bounded(read_text(path, "YOLO data.yaml"), path)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        raise DataError(f"{path}{where}: invalid YAML") from None
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected a mapping with 'names' and 'train'/'val'/'test'")
    if "kpt_shape" in data:
        raise DataError(f"{path}: keypoint (pose) datasets are not supported; only boxes and segments")
    names = data.get("names")
    if isinstance(names, dict):
        try:
            index = {int(k): str(v) for k, v in names.items()}
        except ValueError:
            raise DataError(f"{path}: names: keys must be class indices 0..K-1") from None
        if sorted(index) != list(range(len(index))):
            raise DataError(f"{path}: names: keys must be the class indices 0..{len(index) - 1}")
        names = [index[i] for i in range(len(index))]
    elif isinstance(names, list):
        names = [str(n) for n in names]
    else:
        raise DataError(f"{path}: names: expected a list or a mapping index -> name")
    if "nc" in data and int(data["nc"]) != len(names):
        raise DataError(f"{path}: nc={data['nc']} but names has {len(names)} entries")
    root = Path(data.get("path") or ".")
    if not root.is_absolute():
        root = path.parent / root
    root = Path(os.path.normpath(os.path.abspath(root)))
    splits = {}
    for split in SPLITS:
        value = data.get(split)
        if value:
            splits[split] = [str(v) for v in (value if isinstance(value, list) else [value])]
    if not splits:
        raise DataError(f"{path}: none of train, val or test is set")
    return root, names, splits


def split_images(root: Path, entries: list[str], yaml_path: Path) -> list[Path]:
    """Image paths of one split: folders are searched recursively; .txt files list images."""
    images: list[Path] = []
    for entry in entries:
        source = Path(entry) if Path(entry).is_absolute() else root / entry
        if source.is_dir():
            images += sorted(p for p in source.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
        elif source.is_file() and source.suffix == ".txt":
            for line in source.read_text(encoding="utf-8").splitlines():
                line = line.strip()
                if line:
                    p = Path(line)
                    # Ultralytics: './x' is relative to the list's folder, other relative paths to the root.
                    images.append(p if p.is_absolute() else (source.parent / p if line.startswith("./") else root / p))
        else:
            raise DataError(f"{yaml_path}: split entry '{entry}' ({source}) is neither a folder nor a .txt image list")
    return images


def label_path(image: Path) -> Path:
    """Ultralytics' rule: the last '/images/' becomes '/labels/', the suffix becomes .txt."""
    text = str(image)
    sep_images, sep_labels = f"{os.sep}images{os.sep}", f"{os.sep}labels{os.sep}"
    if sep_images in text:
        head, tail = text.rsplit(sep_images, 1)
        text = head + sep_labels + tail
    return Path(text).with_suffix(".txt")


# ------------------------------------------------------------------------------- yolo -> coco


def parse_label_file(path: Path, num_classes: int) -> list[tuple[int, list[float]]]:
    """[(class, normalised values)]; box lines have 4 values, segment lines an even number >= 6."""
    if not path.is_file():
        return []
    objects = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        try:
            values = [float(v) for v in parts]
        except ValueError:
            raise DataError(f"{path}:{lineno}: values are not numbers") from None
        cls, coords = values[0], values[1:]
        if not cls.is_integer() or not 0 <= cls < num_classes:
            raise DataError(f"{path}:{lineno}: class {parts[0]} outside 0..{num_classes - 1}")
        if len(coords) != 4 and (len(coords) < 6 or len(coords) % 2):
            raise DataError(f"{path}:{lineno}: expected 'class xc yc w h' or 'class x1 y1 x2 y2 x3 y3 ...', got {len(parts)} values")
        if any(not math.isfinite(v) or v < 0 or v > 1 + 1e-6 for v in coords):
            raise DataError(f"{path}:{lineno}: coordinates must be normalised to [0, 1]")
        objects.append((int(cls), coords))
    return objects


def _yolo_image(item: tuple[str, str], num_classes: int) -> tuple[int, int, list[tuple[int, list[float]]]]:
    image, labels = item
    width, height = image_size(image)
    return width, height, parse_label_file(Path(labels), num_classes)


def yolo_objects_to_coco(objects: list[tuple[int, list[float]]], width: int, height: int) -> list[dict]:
    """Normalised YOLO objects -> COCO annotation fields (no ids)."""
    from pycocotools import mask as mask_utils

    anns = []
    for cls, coords in objects:
        if len(coords) == 4:
            xc, yc, w, h = coords
            bw, bh = w * width, h * height
            anns.append({"category_id": cls + 1, "bbox": [xc * width - bw / 2, yc * height - bh / 2, bw, bh],
                         "area": bw * bh, "iscrowd": 0})
        else:
            xs = [x * width for x in coords[0::2]]
            ys = [y * height for y in coords[1::2]]
            poly = [v for xy in zip(xs, ys) for v in xy]
            rle = mask_utils.frPyObjects([poly], height, width)
            anns.append({"category_id": cls + 1, "bbox": [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)],
                         "area": float(mask_utils.area(rle).sum()), "segmentation": [poly], "iscrowd": 0})
    return anns


def yolo_to_coco(data_yaml: str | Path, out_dir: str | Path, splits: list[str] | None = None, nproc: int = 1,
                 force: bool = False) -> list[dict]:
    """Convert the splits of a YOLO dataset; returns one summary row per JSON written."""
    yaml_path = Path(data_yaml)
    root, names, sources = read_data_yaml(yaml_path)
    wanted = list(sources) if not splits else splits
    for split in wanted:
        if split not in sources:
            raise DataError(f"{yaml_path}: split '{split}' is not set (has: {', '.join(sources)})")
    paths = plan_outputs([Path(out_dir) / f"{s}.json" for s in wanted], force)
    categories = [{"id": i + 1, "name": n, "supercategory": "none"} for i, n in enumerate(names)]
    rows = []
    for split, path in zip(wanted, paths):
        images = split_images(root, sources[split], yaml_path)
        if not images:
            warn(f"{yaml_path}: split '{split}' has no images")
        items = [(str(p), str(label_path(p))) for p in images]
        parsed = parallel_map(partial(_yolo_image, num_classes=len(names)), items, nproc, f"yolo2coco {split}",
                              min_parallel=500)
        coco_images, annotations = [], []
        for img_id, (image, (width, height, objects)) in enumerate(zip(images, parsed), 1):
            try:
                file_name = Path(os.path.normpath(os.path.abspath(image))).relative_to(root).as_posix()
            except ValueError:
                file_name = os.path.abspath(image)
            coco_images.append({"id": img_id, "file_name": file_name, "width": width, "height": height})
            for ann in yolo_objects_to_coco(objects, width, height):
                annotations.append({"id": len(annotations) + 1, "image_id": img_id, **ann})
        write_json(path, {"images": coco_images, "annotations": annotations, "categories": categories})
        rows.append(summary(path, split=split, images=len(coco_images), annotations=len(annotations)))
    return rows


# ------------------------------------------------------------------------------- coco -> yolo


def _fmt(value: float) -> str:
    return f"{value:.{DIGITS}g}"


def _largest_polygon(segmentation, height: int, width: int) -> tuple[list[float] | None, int]:
    """One polygon for a COCO segmentation (largest part; RLE via its outer contour) and the
    number of parts dropped."""
    import cv2
    from pycocotools import mask as mask_utils

    if isinstance(segmentation, list):
        polys = [p for p in segmentation if len(p) >= 6]
        if not polys:
            return None, 0
        areas = [float(mask_utils.area(mask_utils.frPyObjects([p], height, width)).sum()) for p in polys]
        return polys[int(np.argmax(areas))], len(polys) - 1
    from det.core.structures.masks import rle_to_bitmap

    bitmap = rle_to_bitmap(segmentation)
    contours, _ = cv2.findContours(bitmap, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    contours = [c for c in contours if len(c) >= 3]
    if not contours:
        return None, 0
    best = max(contours, key=cv2.contourArea)
    return best.reshape(-1).astype(float).tolist(), len(contours) - 1


def coco_objects_to_yolo(anns: list[dict], width: int, height: int, class_index: dict[int, int],
                         segments: bool, stats: dict[str, int]) -> list[str]:
    lines = []
    for ann in anns:
        if ann.get("iscrowd"):
            stats["crowd_skipped"] += 1
            continue
        cls = class_index[ann["category_id"]]
        if segments and ann.get("segmentation"):
            poly, dropped = _largest_polygon(ann["segmentation"], height, width)
            stats["parts_dropped"] += dropped
            if poly is not None:
                xs = [min(max(x / width, 0.0), 1.0) for x in poly[0::2]]
                ys = [min(max(y / height, 0.0), 1.0) for y in poly[1::2]]
                lines.append(" ".join([str(cls)] + [_fmt(v) for xy in zip(xs, ys) for v in xy]))
                continue
        x, y, w, h = (float(v) for v in ann["bbox"])
        x1, y1 = min(max(x, 0.0), width), min(max(y, 0.0), height)
        x2, y2 = min(max(x + w, 0.0), width), min(max(y + h, 0.0), height)
        if (x1, y1, x2, y2) != (x, y, x + w, y + h):
            stats["clipped"] += 1
        if x2 <= x1 or y2 <= y1:
            stats["empty_skipped"] += 1
            continue
        values = ((x1 + x2) / 2 / width, (y1 + y2) / 2 / height, (x2 - x1) / width, (y2 - y1) / height)
        lines.append(" ".join([str(cls)] + [_fmt(v) for v in values]))
    return lines


def coco_to_yolo(ann_file: str | Path, out_dir: str | Path, split: str = "train", img_dir: str | Path | None = None,
                 image_mode: str = "symlink", segments: bool = False, force: bool = False) -> list[dict]:
    """Write label files, OUT/{split}.txt (image list), OUT/data.yaml, and links or copies of the
    images from IMG_DIR."""
    if image_mode not in ("symlink", "copy", "none"):
        raise DataError(f"--image-mode: expected symlink, copy or none, got {image_mode!r}")
    ann_file = Path(ann_file)
    plain_name(split, "--split")
    coco = read_json(ann_file, "COCO annotation file")
    for key in ("images", "categories"):
        if not isinstance(coco, dict) or not isinstance(coco.get(key), list):
            raise DataError(f"{ann_file}: missing '{key}' list")
    cats = sorted(coco["categories"], key=lambda c: c["id"])
    class_index = {c["id"]: i for i, c in enumerate(cats)}
    names = {i: str(c["name"]) for i, c in enumerate(cats)}
    by_image: dict[int, list[dict]] = {}
    for index, img in enumerate(coco["images"]):
        check_coco_image(img, f"{ann_file}: images[{index}]")
        if img["id"] in by_image:
            raise DataError(f"{ann_file}: images[{index}]: duplicate image id {img['id']}")
        by_image[img["id"]] = []
    for index, ann in enumerate(coco.get("annotations", [])):
        if not isinstance(ann, dict) or ann.get("image_id") not in by_image:
            raise DataError(f"{ann_file}: annotations[{index}]: image_id {_get(ann, 'image_id')} is not in 'images'")
        if ann.get("category_id") not in class_index:
            raise DataError(f"{ann_file}: annotations[{index}]: category_id {ann.get('category_id')} is not in 'categories'")
        check_finite_box(ann.get("bbox"), f"{ann_file}: annotations[{index}].bbox")
        by_image[ann["image_id"]].append(ann)

    out_dir = Path(out_dir)
    yaml_path, list_path = out_dir / "data.yaml", out_dir / f"{split}.txt"
    data = _merge_data_yaml(yaml_path, names, split, force)
    copy_images = img_dir is not None and image_mode != "none"
    layout = [(img, image_rel_path(str(img["file_name"]), split, f"{ann_file}: images[{i}].file_name"))
              for i, img in enumerate(coco["images"])]
    planned = [list_path] + [out_dir / label_rel(rel) for _, rel in layout]
    sources = {}
    if copy_images:
        planned += [out_dir / rel for _, rel in layout]
        sources = {img["id"]: _image_source(img_dir, img, ann_file) for img, _ in layout}
    plan_outputs(planned, force)
    stats = {"crowd_skipped": 0, "parts_dropped": 0, "clipped": 0, "empty_skipped": 0}
    n_objects = 0
    from det.core.log import track

    for img, rel in track(layout, f"coco2yolo {split}"):
        lines = coco_objects_to_yolo(by_image[img["id"]], int(img["width"]), int(img["height"]), class_index, segments, stats)
        n_objects += len(lines)
        write_text(out_dir / label_rel(rel), "".join(line + "\n" for line in lines))
        if copy_images:
            source = sources[img["id"]]
            target = out_dir / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            inside(out_dir, rel.as_posix(), f"{ann_file}: image {img['id']} output")
            target.unlink(missing_ok=True)
            if image_mode == "copy":
                shutil.copy2(source, target)
            else:
                target.symlink_to(source.resolve())
    if not copy_images:
        warn(f"images not copied: place them under {out_dir} at the paths listed in {list_path}")
    write_text(list_path, "".join(f"./{rel.as_posix()}\n" for _, rel in layout))
    write_text(yaml_path, yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    for key, count in stats.items():
        if count:
            warn(f"{ann_file}: {count} annotation(s) {key.replace('_', ' ')}")
    return [summary(list_path, split=split, images=len(coco["images"]), objects=n_objects, **stats),
            summary(yaml_path, classes=len(names))]


def image_rel_path(file_name: str, split: str, where: str = "file_name") -> Path:
    """Where an image goes inside the YOLO folder: its own path when it already has an 'images'
    folder in it (a dataset that came from YOLO), else images/{split}/{file_name}. A name that
    is absolute or climbs out with '..' is an error naming `where`."""
    rel = Path(os.path.normpath(inside(".", file_name, where, follow_links=False)))
    return rel if "images" in rel.parts[:-1] else Path("images") / split / rel


def _image_source(img_dir: str | Path, img: dict, ann_file: Path) -> Path:
    """The image a COCO entry names under --img-dir: it exists and stays inside (no '..',
    absolute path or symlink out)."""
    source = inside(img_dir, str(img["file_name"]), f"{ann_file}: image {img['id']} file_name")
    if not source.is_file():
        raise DataError(f"{source}: image of '{img['file_name']}' not found under --img-dir")
    return source


def check_coco_image(img: object, where: str) -> None:
    """An `images` entry: id, file_name, and positive integer width and height."""
    if not isinstance(img, dict) or not {"id", "file_name", "width", "height"} <= set(img):
        raise DataError(f"{where}: needs id, file_name, width and height")
    for key in ("width", "height"):
        value = img[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
            raise DataError(f"{where}.{key}: expected a positive number, got {value!r}")


def check_finite_box(bbox: object, where: str) -> None:
    """A COCO bbox: four finite numbers with width and height >= 0."""
    if not isinstance(bbox, (list, tuple)) or len(bbox) != 4 or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in bbox):
        raise DataError(f"{where}: expected [x, y, w, h] of finite numbers, got {bbox!r:.80}")
    if bbox[2] < 0 or bbox[3] < 0:
        raise DataError(f"{where}: negative width or height in {bbox!r:.80}")


def _get(obj: object, key: str) -> object:
    return obj.get(key) if isinstance(obj, dict) else None


def label_rel(image_rel: Path) -> Path:
    """Ultralytics' rule on a relative path: the last 'images' folder becomes 'labels'."""
    parts = list(image_rel.parts)
    index = len(parts) - 2 - parts[:-1][::-1].index("images")
    parts[index] = "labels"
    return Path(*parts).with_suffix(".txt")


def _merge_data_yaml(path: Path, names: dict[int, str], split: str, force: bool) -> dict:
    """A new data.yaml, or the existing one with this split added when its classes match."""
    data = {"path": ".", "train": None, "val": None, "test": None, "nc": len(names), "names": names}
    if path.is_file():
        try:
            old = safe_load_bounded(read_text(path, "YOLO data.yaml"), path) or {}
        except yaml.YAMLError:
            old = None
        old_names = old.get("names") if isinstance(old, dict) else None
        if isinstance(old_names, list):
            old_names = dict(enumerate(old_names))
        if old_names is not None and {int(k): str(v) for k, v in old_names.items()} == names:
            data.update({k: v for k, v in old.items() if k in SPLITS and v})
        elif not force:
            raise DataError(f"{path}: already exists with other class names (use --force to replace it)")
    data[split] = f"{split}.txt"
    return {k: v for k, v in data.items() if v is not None}
