"""Small hand-made datasets (COCO, VOC, middle format) written to tmp folders."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from pycocotools import mask as mask_utils


def write_img(path: Path, h: int, w: int, value: int = 90) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = np.full((h, w, 3), value, np.uint8)
    img[::7] = 200  # some texture so resizes are not trivial
    assert cv2.imwrite(str(path), img)


@pytest.fixture
def coco_dir(tmp_path):
    """Two images; categories with non-contiguous ids 3 (a), 7 (b), 9 (c); a polygon mask,
    a compressed RLE, an uncompressed RLE, a crowd instance and a degenerate box."""
    write_img(tmp_path / "imgs" / "one.png", 40, 60)
    write_img(tmp_path / "imgs" / "two.png", 50, 30)
    rle_bitmap = np.zeros((40, 60), np.uint8)
    rle_bitmap[10:20, 30:50] = 1
    rle = mask_utils.encode(np.asfortranarray(rle_bitmap))
    rle["counts"] = rle["counts"].decode("ascii")
    unc = np.zeros((50, 30), np.uint8)
    unc[5:15, 2:12] = 1
    counts, last, run = [], 0, 0
    for v in unc.flatten(order="F"):
        if v != last:
            counts.append(run)
            run, last = 0, v
        run += 1
    counts.append(run)
    doc = {
        "images": [{"id": 11, "file_name": "one.png", "width": 60, "height": 40},
                   {"id": 12, "file_name": "two.png", "width": 30, "height": 50}],
        "categories": [{"id": 9, "name": "c"}, {"id": 3, "name": "a"}, {"id": 7, "name": "b"}],
        "annotations": [
            {"id": 1, "image_id": 11, "category_id": 3, "bbox": [2, 4, 10, 6], "area": 60, "iscrowd": 0,
             "segmentation": [[2, 4, 12, 4, 12, 10, 2, 10]]},
            {"id": 2, "image_id": 11, "category_id": 9, "bbox": [30, 10, 20, 10], "area": 200, "iscrowd": 1,
             "segmentation": rle},
            {"id": 3, "image_id": 11, "category_id": 7, "bbox": [5, 5, 0.5, 8], "area": 4, "iscrowd": 0},
            {"id": 4, "image_id": 12, "category_id": 7, "bbox": [2, 5, 10, 10], "area": 100, "iscrowd": 0,
             "segmentation": {"size": [50, 30], "counts": counts}},
        ],
    }
    (tmp_path / "ann.json").write_text(json.dumps(doc))
    return tmp_path


VOC_XML = """<annotation><filename>{name}.jpg</filename>
<size><width>{w}</width><height>{h}</height><depth>3</depth></size>{objects}</annotation>"""
VOC_OBJ = """<object><name>{cls}</name><difficult>{diff}</difficult>
<bndbox><xmin>{x1}</xmin><ymin>{y1}</ymin><xmax>{x2}</xmax><ymax>{y2}</ymax></bndbox></object>"""


@pytest.fixture
def voc_dir(tmp_path):
    """VOC2007 layout with two images: a difficult 'dog', a 'cat', a 'person'."""
    root = tmp_path / "VOCdevkit"
    sub = root / "VOC2007"
    objs = {
        "000001": (48, 64, [("dog", 1, 5, 6, 20, 30), ("cat", 0, 10, 10, 40, 45)]),
        "000002": (32, 32, [("person", 0, 1, 1, 32, 32)]),
    }
    for name, (h, w, items) in objs.items():
        write_img(sub / "JPEGImages" / f"{name}.jpg", h, w)
        xml = VOC_XML.format(name=name, w=w, h=h, objects="".join(
            VOC_OBJ.format(cls=c, diff=d, x1=a, y1=b, x2=x, y2=y) for c, d, a, b, x, y in items))
        (sub / "Annotations").mkdir(parents=True, exist_ok=True)
        (sub / "Annotations" / f"{name}.xml").write_text(xml)
    (sub / "ImageSets" / "Main").mkdir(parents=True)
    (sub / "ImageSets" / "Main" / "trainval.txt").write_text("000001\n000002\n")
    return root
