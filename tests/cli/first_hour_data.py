"""Tiny datasets in the layouts `det train --data` accepts, made by the tests themselves."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

CLASSES = ("box", "disc")


def _image(rng: np.random.Generator, size: int) -> tuple[np.ndarray, list[tuple[int, list[float]]]]:
    """A grey image with 1-2 filled rectangles (class 0) or discs (class 1): (image, [(class, xywh)])."""
    img = np.full((size, size, 3), 90, np.uint8)
    objects = []
    for _ in range(int(rng.integers(1, 3))):
        cls, w = int(rng.integers(0, 2)), int(rng.integers(size // 5, size // 3))
        x, y = (int(v) for v in rng.integers(0, size - w, 2))
        if cls == 0:
            cv2.rectangle(img, (x, y), (x + w - 1, y + w - 1), (40, 200, 40), -1)
        else:
            cv2.circle(img, (x + w // 2, y + w // 2), w // 2, (200, 60, 40), -1)
        objects.append((cls, [float(x), float(y), float(w), float(w)]))
    return img, objects


def make_coco_folder(root: Path, num_train: int = 6, num_val: int = 4, size: int = 64, seed: int = 0) -> Path:
    """ROOT/annotations/instances_{train,val}.json and ROOT/{train,val}/*.png (bare file names)."""
    rng = np.random.default_rng(seed)
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    for split, count in (("train", num_train), ("val", num_val)):
        (root / split).mkdir(exist_ok=True)
        images, anns = [], []
        for i in range(count):
            img, objects = _image(rng, size)
            cv2.imwrite(str(root / split / f"{i:04d}.png"), img)
            images.append({"id": i + 1, "file_name": f"{i:04d}.png", "width": size, "height": size})
            for cls, box in objects:
                anns.append({"id": len(anns) + 1, "image_id": i + 1, "category_id": cls + 1, "bbox": box,
                             "area": box[2] * box[3], "iscrowd": 0})
        doc = {"images": images, "annotations": anns,
               "categories": [{"id": k + 1, "name": n} for k, n in enumerate(CLASSES)]}
        (root / "annotations" / f"instances_{split}.json").write_text(json.dumps(doc))
    return root


def make_yolo(root: Path, count: int = 4, size: int = 64) -> Path:
    """ROOT/data.yaml, images/{train,val}/*.png, labels/{train,val}/*.txt."""
    rng = np.random.default_rng(1)
    for split in ("train", "val"):
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        (root / "labels" / split).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            img, objects = _image(rng, size)
            cv2.imwrite(str(root / "images" / split / f"{i}.png"), img)
            lines = [f"{c} {(x + w / 2) / size} {(y + h / 2) / size} {w / size} {h / size}" for c, (x, y, w, h) in objects]
            (root / "labels" / split / f"{i}.txt").write_text("\n".join(lines) + "\n")
    (root / "data.yaml").write_text("path: .\ntrain: images/train\nval: images/val\nnames: [box, disc]\n")
    return root / "data.yaml"


def make_voc(root: Path, count: int = 3, size: int = 64) -> Path:
    """A VOC year folder: JPEGImages/, Annotations/*.xml, ImageSets/Main/{trainval,test}.txt."""
    rng = np.random.default_rng(2)
    for sub in ("JPEGImages", "Annotations", "ImageSets/Main"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    names = []
    for i in range(count):
        img, objects = _image(rng, size)
        name = f"{i:06d}"
        cv2.imwrite(str(root / "JPEGImages" / f"{name}.jpg"), img)
        objs = "".join(f"<object><name>{CLASSES[c]}</name><difficult>0</difficult><bndbox><xmin>{x + 1:.0f}</xmin>"
                       f"<ymin>{y + 1:.0f}</ymin><xmax>{x + w:.0f}</xmax><ymax>{y + h:.0f}</ymax></bndbox></object>"
                       for c, (x, y, w, h) in objects)
        (root / "Annotations" / f"{name}.xml").write_text(
            f"<annotation><size><width>{size}</width><height>{size}</height><depth>3</depth></size>{objs}</annotation>")
        names.append(name)
    (root / "ImageSets/Main/trainval.txt").write_text("\n".join(names) + "\n")
    (root / "ImageSets/Main/test.txt").write_text("\n".join(names[:2]) + "\n")
    return root
