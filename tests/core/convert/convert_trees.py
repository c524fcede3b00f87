"""Small source trees in each dataset layout, with the ground truth they encode, for the
converter tests (and benchmarks/convert.py, which scales them up)."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np


def _img(path: Path, width: int, height: int, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    cv2.imwrite(str(path), rng.integers(0, 255, (height, width, 3), dtype=np.uint8))
    return path


# ------------------------------------------------------------------------------- Cityscapes

CITY_FRAME = "aachen_000000_000019"
CITY_SIZE = (48, 32)  # width, height


def cityscapes_instance_png() -> np.ndarray:
    """An instance-id image drawn with OpenCV: road, two cars (one partly hidden), a person,
    a crowd of persons (id 24 < 1000), a caravan (has instances, not evaluated)."""
    w, h = CITY_SIZE
    ids = np.full((h, w), 7, dtype=np.uint16)  # road
    cv2.rectangle(ids, (2, 3), (12, 9), 26000, thickness=-1)  # car 0: x 2..12, y 3..9
    cv2.rectangle(ids, (10, 5), (20, 14), 26001, thickness=-1)  # car 1 drawn over car 0
    cv2.circle(ids, (30, 20), 4, 24000, thickness=-1)  # person
    cv2.rectangle(ids, (36, 2), (45, 6), 24, thickness=-1)  # person crowd region
    cv2.rectangle(ids, (2, 22), (8, 28), 29000, thickness=-1)  # caravan: not evaluated
    return ids


CITY_POLYGONS = {
    "imgHeight": 32,
    "imgWidth": 48,
    "objects": [
        {"label": "road", "polygon": [[0, 0], [47, 0], [47, 31], [0, 31]]},
        {"label": "car", "polygon": [[2, 3], [10, 3], [10, 8], [2, 8]]},  # car 26000
        {"label": "rider", "polygon": [[20, 10], [30, 10], [30, 20], [20, 20]]},  # rider 25000
        {"label": "sky", "polygon": [[25, 10], [40, 10], [40, 12], [25, 12]]},  # hides rider rows 10..12
        {"label": "cargroup", "polygon": [[35, 20], [44, 20], [44, 25], [35, 25]]},  # crowd car, id 26
        {"label": "car", "deleted": 1, "polygon": [[0, 0], [5, 0], [5, 5]]},
        {"label": "car", "polygon": [[40, 0], [46, 0], [46, 4], [40, 4]]},  # car 26001
    ],
}


def make_cityscapes(root: Path) -> Path:
    """train/aachen: one frame with an instanceIds PNG; val/frankfurt: one frame with only the
    polygons JSON (rasterised by the converter)."""
    w, h = CITY_SIZE
    _img(root / "leftImg8bit/train/aachen" / f"{CITY_FRAME}_leftImg8bit.png", w, h)
    gt = root / "gtFine/train/aachen"
    gt.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(gt / f"{CITY_FRAME}_gtFine_instanceIds.png"), cityscapes_instance_png())
    _img(root / "leftImg8bit/val/frankfurt/frankfurt_000000_000294_leftImg8bit.png", w, h, 1)
    gt = root / "gtFine/val/frankfurt"
    gt.mkdir(parents=True, exist_ok=True)
    (gt / "frankfurt_000000_000294_gtFine_polygons.json").write_text(json.dumps(CITY_POLYGONS))
    return root


# ------------------------------------------------------------------------------- VOC

VOC_OBJECTS = {
    # image id -> [(name, xmin, ymin, xmax, ymax, difficult)] (1-based VOC pixel corners)
    "000001": [("dog", 10, 20, 50, 60, 0), ("person", 5, 5, 15, 40, 1), ("car", 30, 12, 70, 44, 0)],
    "000002": [("tvmonitor", 1, 1, 20, 20, 0)],
    "000003": [],
}


def voc_xml(image_id: str, objects: list, width: int = 80, height: int = 64, difficult_tag: bool = True) -> str:
    parts = [f"<annotation><folder>VOC2007</folder><filename>{image_id}.jpg</filename>",
             f"<size><width>{width}</width><height>{height}</height><depth>3</depth></size>"]
    for name, x1, y1, x2, y2, difficult in objects:
        diff = f"<difficult>{difficult}</difficult>" if difficult_tag else ""
        parts.append(f"<object><name>{name}</name><pose>Left</pose><truncated>0</truncated>{diff}"
                     f"<bndbox><xmin>{x1}</xmin><ymin>{y1}</ymin><xmax>{x2}</xmax><ymax>{y2}</ymax></bndbox></object>")
    parts.append("</annotation>")
    return "\n".join(parts)


def make_voc(devkit: Path) -> Path:
    """VOC2007 with train/val/trainval/test lists; VOC2012 with a train list only (its val and
    trainval lists are missing, so voc12_val/trainval and voc0712_val/trainval are skipped)."""
    for year, ids_by_split in (("2007", {"train": ["000001", "000002"], "val": ["000003"],
                                         "trainval": ["000001", "000002", "000003"], "test": ["000002"]}),
                               ("2012", {"train": ["2008_000001"]})):
        base = devkit / f"VOC{year}"
        (base / "Annotations").mkdir(parents=True, exist_ok=True)
        (base / "ImageSets/Main").mkdir(parents=True, exist_ok=True)
        for split, ids in ids_by_split.items():
            (base / "ImageSets/Main" / f"{split}.txt").write_text("".join(f"{i}\n" for i in ids))
        for image_id in sorted({i for ids in ids_by_split.values() for i in ids}):
            objects = VOC_OBJECTS.get(image_id, [("bird", 3, 4, 9, 12, 0)])
            (base / "Annotations" / f"{image_id}.xml").write_text(voc_xml(image_id, objects))
    return devkit


# ------------------------------------------------------------------------------- MOT

MOT_GT = [
    # frame, id, x, y, w, h, conf, class, visibility
    (1, 1, 10.5, 8.0, 12.0, 20.0, 1, 1, 0.9),
    (2, 1, 11.5, 8.0, 12.0, 20.0, 1, 1, 0.8),
    (3, 1, 12.5, 8.0, 12.0, 20.0, 1, 1, 0.1),
    (5, 1, 14.5, 8.0, 12.0, 20.0, 1, 1, 1.0),
    (1, 7, 40.0, 20.0, 30.0, 40.0, 1, 1, 1.0),  # runs past the right and bottom edges (w=64, h=48)
    (2, 7, 41.0, 20.0, 30.0, 40.0, 1, 1, 1.0),
    (6, 7, 45.0, 20.0, 10.0, 10.0, 1, 1, 0.5),
    (4, 3, -3.0, -2.0, 10.0, 10.0, 0, 7, 1.0),  # static person (class 7), outside at the top left
    (6, 4, 20.0, 20.0, 5.0, 5.0, 0, 3, 1.0),  # car
]
MOT_DET = [(1, -1, 10.0, 8.0, 12.0, 20.0, 0.9), (1, -1, 40.0, 21.0, 30.0, 40.0, 0.6), (4, -1, 1.0, 2.0, 3.0, 4.0, 0.3)]


def _seq(folder: Path, name: str, n: int, gt: list | None, det: list | None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "seqinfo.ini").write_text(
        f"[Sequence]\nname={name}\nimDir=img1\nframeRate=30\nseqLength={n}\nimWidth=64\nimHeight=48\nimExt=.jpg\n")
    for i in range(1, n + 1):
        _img(folder / "img1" / f"{i:06d}.jpg", 64, 48, i)
    if gt is not None:
        (folder / "gt").mkdir(exist_ok=True)
        (folder / "gt/gt.txt").write_text("".join(",".join(str(v) for v in row) + "\n" for row in gt))
    if det is not None:
        (folder / "det").mkdir(exist_ok=True)
        (folder / "det/det.txt").write_text("".join(",".join(str(v) for v in row) + ",-1,-1,-1\n" for row in det))


def make_mot(root: Path) -> Path:
    """MOT17-like: train/MOT17-02-FRCNN (6 frames, gt + det), train/MOT17-04-FRCNN (3 frames,
    one person), test/MOT17-01-FRCNN (2 frames, det only)."""
    _seq(root / "train/MOT17-02-FRCNN", "MOT17-02-FRCNN", 6, MOT_GT, MOT_DET)
    _seq(root / "train/MOT17-04-FRCNN", "MOT17-04-FRCNN", 3,
         [(1, 2, 1.0, 1.0, 5.0, 6.0, 1, 1, 1.0), (3, 2, 2.0, 1.0, 5.0, 6.0, 1, 1, 1.0)], [(2, -1, 1.0, 1.0, 2.0, 2.0, 0.5)])
    _seq(root / "test/MOT17-01-FRCNN", "MOT17-01-FRCNN", 2, None, [(2, -1, 3.0, 3.0, 4.0, 4.0, 0.7)])
    return root


# ------------------------------------------------------------------------------- CrowdHuman

CROWDHUMAN = {
    "train": [
        {"ID": "273271,c9db000d5146c15", "gtboxes": [
            {"tag": "person", "fbox": [10, 12, 30, 60], "vbox": [12, 14, 20, 40], "hbox": [15, 12, 8, 8],
             "extra": {"box_id": 0, "occ": 1}},
            {"tag": "mask", "fbox": [40, 5, 20, 20], "vbox": [40, 5, 20, 20], "extra": {"ignore": 1}},
            {"tag": "person", "fbox": [-5, 30, 12, 30], "vbox": [0, 30, 7, 25], "extra": {"ignore": 0}}]},
        {"ID": "283554,35288000868e92d4", "gtboxes": []},
    ],
    "val": [{"ID": "273275,4e9d1000623d8d2d", "gtboxes": [{"fbox": [1, 2, 3, 4], "vbox": [1, 2, 3, 4]}]}],
}
CROWDHUMAN_SIZES = {"273271,c9db000d5146c15": (64, 80), "283554,35288000868e92d4": (50, 40), "273275,4e9d1000623d8d2d": (30, 20)}


def make_crowdhuman(root: Path) -> Path:
    for mode, records in CROWDHUMAN.items():
        (root / f"annotation_{mode}.odgt").parent.mkdir(parents=True, exist_ok=True)
        (root / f"annotation_{mode}.odgt").write_text("".join(json.dumps(r) + "\n" for r in records))
        for r in records:
            _img(root / mode / "Images" / f"{r['ID']}.jpg", *CROWDHUMAN_SIZES[r["ID"]])
    return root


# ------------------------------------------------------------------------------- YouTube-VIS


def youtubevis_json(with_annotations: bool) -> dict:
    seg = {"size": [24, 32], "counts": [100, 10, 14, 10, 634]}  # uncompressed RLE, 20 pixels
    data = {
        "info": {}, "licenses": [],
        "categories": [{"id": 1, "name": "person", "supercategory": "object"},
                       {"id": 2, "name": "giant_panda", "supercategory": "object"}],
        "videos": [
            {"id": 5, "width": 32, "height": 24, "length": 3,
             "file_names": ["0a2f/00000.jpg", "0a2f/00005.jpg", "0a2f/00010.jpg"]},
            {"id": 9, "width": 40, "height": 30, "length": 2, "file_names": ["1b3c/00000.jpg", "1b3c/00005.jpg"]},
        ],
    }
    if with_annotations:
        data["annotations"] = [
            {"id": 11, "video_id": 5, "category_id": 2, "iscrowd": 0, "height": 24, "width": 32, "length": 1,
             "bboxes": [[4, 4, 2, 10], None, [5, 4, 2, 10]], "segmentations": [seg, None, seg], "areas": [20, None, 20]},
            {"id": 12, "video_id": 5, "category_id": 1, "iscrowd": 0, "height": 24, "width": 32, "length": 1,
             "bboxes": [None, [1, 1, 3, 3], [2, 2, 3, 3]], "segmentations": [None, seg, seg], "areas": [None, 9, 9]},
            {"id": 13, "video_id": 9, "category_id": 1, "iscrowd": 0, "height": 30, "width": 40, "length": 1,
             "bboxes": [[0, 0, 5, 5], [1, 0, 5, 5]], "segmentations": [seg, seg], "areas": [25, 25]},
        ]
    return data


def make_youtubevis(root: Path, version: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for mode in ("train", "valid"):
        path = root / f"{mode}.json" if version == "2019" else root / mode / "instances.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(youtubevis_json(mode == "train")))
    return root


# ------------------------------------------------------------------------------- YOLO

YOLO_LABELS = {
    # relative image path -> (width, height, label text)
    "images/train/a.jpg": (64, 48, "0 0.5 0.5 0.25 0.5\n2 0.1234567891 0.3 0.2 0.1\n"),
    "images/train/sub/b.png": (40, 30, "1 0.1 0.1 0.5 0.1 0.5 0.6 0.1 0.6\n"),  # a segment (rectangle)
    "images/train/c.jpg": (32, 32, None),  # no label file: background image
    "images/val/d.jpg": (50, 50, "0 0.3 0.4 0.2 0.2\n"),
}


def make_yolo(root: Path) -> Path:
    """train is a folder, val a .txt image list; names as a mapping."""
    for rel, (w, h, text) in YOLO_LABELS.items():
        _img(root / rel, w, h)
        if text is not None:
            label = root / rel.replace("images/", "labels/", 1)
            label = label.with_suffix(".txt")
            label.parent.mkdir(parents=True, exist_ok=True)
            label.write_text(text)
    (root / "val.txt").write_text("./images/val/d.jpg\n")
    (root / "data.yaml").write_text("path: .\ntrain: images/train\nval: val.txt\nnames:\n  0: cat\n  1: dog\n  2: bird\n")
    return root
