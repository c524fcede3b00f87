"""MOTChallenge (MOT15/16/17/20) -> COCO-video JSON, and MOT -> a ReID crop dataset.

COCO-video output follows MMDetection's mot2coco: `{subset}_cocoformat.json` for `train`,
`test` and with `split_train` `half-train`/`half-val` (first `n // 2 + 1` frames / the rest of
every training video, plus `gt/gt_half-{train,val}.txt` written next to `gt.txt` for the MOT
metrics); the 13 MOT17 categories (ids 1..13); video, image and annotation ids start at 1 and keep
counting across subsets; `instance_id` restarts at 0 per subset; images carry `frame_id`
(0-based) and `mot_frame_id` (the number in the file name); annotations carry `visibility`,
`mot_instance_id` and `mot_conf`. Public detections (`det/det.txt`) are written as COCO results
JSON (`{subset}_detections.json`: image_id, category_id 1, xywh bbox, score) instead of a pickle.
MOT15 ground truth (10 columns, no class or visibility) reads as class 1, visibility 1.
"""
from __future__ import annotations

import configparser
import math
import random
from collections import defaultdict
from pathlib import Path

import numpy as np

from det.core.convert.common import (
    check_box,
    IMAGE_EXTENSIONS,
    parallel_map,
    plan_outputs,
    require_dir,
    require_file,
    summary,
    warn,
    write_json,
    write_text,
)
from det.core.errors import DataError
from det.core.log import track

CATEGORIES = [
    {"id": 1, "name": "pedestrian"}, {"id": 2, "name": "person_on_vehicle"}, {"id": 3, "name": "car"},
    {"id": 4, "name": "bicycle"}, {"id": 5, "name": "motorbike"}, {"id": 6, "name": "non_mot_vehicle"},
    {"id": 7, "name": "static_person"}, {"id": 8, "name": "distractor"}, {"id": 9, "name": "occluder"},
    {"id": 10, "name": "occluder_on_ground"}, {"id": 11, "name": "occluder_full"}, {"id": 12, "name": "reflection"},
    {"id": 13, "name": "crowd"},
]
# mot2reid keeps class 1 (pedestrian) only: the others are either not people or ignore classes.
REID_CLASSES = {1}


class Sequence:
    """One MOT video folder: seqinfo.ini, its frames, and the gt/det text files."""

    def __init__(self, folder: Path):
        self.folder = folder
        ini = require_file(folder / "seqinfo.ini", "MOT seqinfo.ini")
        parser = configparser.ConfigParser()
        try:
            parser.read(ini, encoding="utf-8")
            seq = parser["Sequence"]
            self.name = seq["name"].strip()
            self.im_dir = seq.get("imDir", "img1").strip()
            self.fps = int(float(seq["frameRate"]))
            self.length = int(seq["seqLength"])
            self.width = int(seq["imWidth"])
            self.height = int(seq["imHeight"])
        except (configparser.Error, KeyError, ValueError) as exc:
            raise DataError(f"{ini}: bad [Sequence] section ({type(exc).__name__}: {exc})") from None
        if self.name != folder.name:
            raise DataError(f"{ini}: name={self.name} does not match the folder name {folder.name}")
        img_dir = require_dir(folder / self.im_dir, "MOT frame folder")
        self.frames = sorted(p.name for p in img_dir.iterdir() if p.name.lower().endswith(IMAGE_EXTENSIONS))
        if len(self.frames) != self.length:
            raise DataError(f"{ini}: seqLength={self.length} but {img_dir} holds {len(self.frames)} images")
        for name in self.frames:
            if not Path(name).stem.isdigit():
                raise DataError(f"{img_dir / name}: frame names must be numbers (e.g. 000001.jpg)")

    @property
    def gt_path(self) -> Path:
        return self.folder / "gt" / "gt.txt"


def _rows(path: Path, what: str, min_cols: int) -> list[tuple[int, list[str]]]:
    path = require_file(path, what)
    rows = []
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            line = line.strip()
            if not line:
                continue
            cols = [c.strip() for c in line.split(",")]
            if len(cols) < min_cols:
                raise DataError(f"{path}:{lineno}: expected at least {min_cols} comma-separated values, got {len(cols)}")
            rows.append((lineno, cols))
    return rows


def parse_gt(path: Path, mot15: bool = False) -> list[tuple[int, dict, str]]:
    """gt.txt -> [(mot frame id, annotation fields, raw line)] in file order."""
    out = []
    for lineno, cols in _rows(path, "MOT ground truth", 6):
        try:
            frame, ins = int(cols[0]), int(cols[1])
            bbox = [float(v) for v in cols[2:6]]
            legacy = mot15 or len(cols) == 10 or len(cols) < 9
            conf = 1.0 if legacy else float(cols[6])
            category = 1 if legacy else int(float(cols[7]))
            visibility = 1.0 if legacy else float(cols[8])
        except (ValueError, OverflowError):
            raise DataError(f"{path}:{lineno}: values are not numbers") from None
        check_box(bbox, f"{path}:{lineno}", allow_empty=True)
        if not all(math.isfinite(v) for v in (conf, visibility)):
            raise DataError(f"{path}:{lineno}: conf and visibility must be finite numbers")
        ann = {"category_id": category, "bbox": bbox, "area": bbox[2] * bbox[3], "iscrowd": False,
               "visibility": visibility, "mot_instance_id": ins, "mot_conf": conf}
        out.append((frame, ann, ",".join(cols)))
    return out


def parse_det(path: Path) -> dict[int, list[list[float]]]:
    """det.txt -> {mot frame id: [[x, y, w, h, score], ...]}; the id column must be -1."""
    out: dict[int, list[list[float]]] = defaultdict(list)
    for lineno, cols in _rows(path, "MOT public detections", 7):
        try:
            frame, ins = int(cols[0]), int(float(cols[1]))
            values = [float(v) for v in cols[2:7]]
        except (ValueError, OverflowError):
            raise DataError(f"{path}:{lineno}: values are not numbers") from None
        check_box(values[:4], f"{path}:{lineno}", allow_empty=True)
        if not math.isfinite(values[4]):
            raise DataError(f"{path}:{lineno}: score {cols[6]} is not a finite number")
        if ins != -1:
            raise DataError(f"{path}:{lineno}: detections must have id -1, got {ins}")
        out[frame].append(values)
    return out


def _sequences(folder: Path) -> list[Sequence]:
    return [Sequence(p) for p in sorted(folder.iterdir()) if p.is_dir()]


def convert_mot(root: str | Path, out_dir: str | Path, split_train: bool = False, convert_det: bool = False,
                force: bool = False) -> list[dict]:
    """Convert ROOT/train and ROOT/test (those present); returns one summary row per JSON."""
    root = require_dir(root, "MOT root")
    mot15 = "MOT15" in str(root.resolve())
    subsets = [s for s in ("train", "test") if (root / s).is_dir()]
    if not subsets:
        raise DataError(f"{root}: neither a train nor a test folder found")
    if split_train:
        if "train" not in subsets:
            raise DataError(f"{root / 'train'}: not found (needed by --split-train)")
        subsets += ["half-train", "half-val"]
    seqs = {s: _sequences(root / ("train" if "half" in s else s)) for s in ("train", "test") if s in subsets}
    for s, found in seqs.items():
        if not found:
            raise DataError(f"{root / s}: no sequence folders")
    out_dir = Path(out_dir)
    planned = [out_dir / f"{s}_cocoformat.json" for s in subsets]
    if convert_det:
        planned += [out_dir / f"{s}_detections.json" for s in subsets]
    if split_train:
        planned += [seq.folder / "gt" / f"gt_{s}.txt" for seq in seqs["train"] for s in ("half-train", "half-val")]
    plan_outputs(planned, force)

    vid_id = img_id = ann_id = 1
    rows = []
    for subset in subsets:
        videos, images, annotations, detections = [], [], [], []
        ins_id = 0
        parse_gt_now = subset != "test"
        for seq in track(seqs["train" if "half" in subset else subset], f"mot {subset}"):
            ins_map: dict[int, int] = {}
            gts = parse_gt(seq.gt_path, mot15) if parse_gt_now else []
            by_frame: dict[int, list[dict]] = defaultdict(list)
            for frame, ann, _ in gts:
                by_frame[frame].append(ann)
            dets = parse_det(seq.folder / "det" / "det.txt") if convert_det else {}
            names = seq.frames
            if "half" in subset:
                cut = seq.length // 2 + 1
                names = names[:cut] if subset == "half-train" else names[cut:]
                keep = {int(Path(n).stem) for n in names}
                write_text(seq.folder / "gt" / f"gt_{subset}.txt", "".join(f"{raw}\n" for frame, _, raw in gts if frame in keep))
            videos.append({"id": vid_id, "name": seq.name, "fps": seq.fps, "width": seq.width, "height": seq.height})
            for frame_id, name in enumerate(names):
                mot_frame = int(Path(name).stem)
                images.append({"id": img_id, "video_id": vid_id, "file_name": f"{seq.name}/{seq.im_dir}/{name}",
                               "height": seq.height, "width": seq.width, "frame_id": frame_id, "mot_frame_id": mot_frame})
                for ann in by_frame.get(mot_frame, []):
                    mot_ins = ann["mot_instance_id"]
                    if mot_ins not in ins_map:
                        ins_map[mot_ins] = ins_id
                        ins_id += 1
                    annotations.append({**ann, "id": ann_id, "image_id": img_id, "instance_id": ins_map[mot_ins]})
                    ann_id += 1
                for x, y, w, h, score in dets.get(mot_frame, []):
                    detections.append({"image_id": img_id, "category_id": 1, "bbox": [x, y, w, h], "score": score})
                img_id += 1
            vid_id += 1
        coco = {"categories": [dict(c) for c in CATEGORIES], "videos": videos, "images": images,
                "annotations": annotations, "num_instances": ins_id}
        path = out_dir / f"{subset}_cocoformat.json"
        write_json(path, coco)
        rows.append(summary(path, split=subset, videos=len(videos), images=len(images),
                            annotations=len(annotations), instances=ins_id))
        if convert_det:
            det_path = out_dir / f"{subset}_detections.json"
            write_json(det_path, detections)
            rows.append(summary(det_path, split=subset, detections=len(detections)))
    return rows


# ----------------------------------------------------------------------------------------- ReID


def crop(img: np.ndarray, ltwh: list[float]) -> np.ndarray:
    """The ReID patch of one box: corners truncated to int, clipped to the image, both ends
    inclusive (the same pixels MMDetection's mot2reid crops)."""
    h, w = img.shape[:2]
    x1, y1 = int(ltwh[0]), int(ltwh[1])
    x2, y2 = int(ltwh[0] + ltwh[2]), int(ltwh[1] + ltwh[3])
    x1, x2 = min(max(x1, 0), w - 1), min(max(x2, 0), w - 1)
    y1, y2 = min(max(y1, 0), h - 1), min(max(y2, 0), h - 1)
    return img[y1:y2 + 1, x1:x2 + 1]


def _reid_video(job: tuple[str, str, float, bool]) -> dict[str, int]:
    """Crop every kept box of one sequence into imgs/{video}_{id:06d}/{n:06d}.jpg."""
    import cv2

    folder, imgs_dir, vis_threshold, mot15 = job
    seq = Sequence(Path(folder))
    counts: dict[str, int] = defaultdict(int)
    by_frame: dict[int, list[tuple[str, int, list[float]]]] = defaultdict(list)
    for frame, ann, _ in parse_gt(seq.gt_path, mot15):
        if ann["category_id"] not in REID_CLASSES or ann["visibility"] < vis_threshold:
            continue
        person = f"{seq.name}_{ann['mot_instance_id']:06d}"
        by_frame[frame].append((person, counts[person], ann["bbox"]))  # index in gt.txt order
        counts[person] += 1
    for frame, boxes in sorted(by_frame.items()):
        if not 1 <= frame <= len(seq.frames):
            raise DataError(f"{seq.gt_path}: frame {frame} is outside 1..{len(seq.frames)}")
        path = seq.folder / seq.im_dir / seq.frames[frame - 1]
        img = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if img is None:
            raise DataError(f"{path}: cannot read image")
        for person, index, ltwh in boxes:
            target = Path(imgs_dir) / person / f"{index:06d}.jpg"
            target.parent.mkdir(parents=True, exist_ok=True)
            ok, buf = cv2.imencode(".jpg", crop(img, ltwh))
            if not ok:
                raise DataError(f"{path}: cannot encode the crop of {person}")
            target.write_bytes(buf.tobytes())
    return dict(counts)


def convert_mot_reid(root: str | Path, out_dir: str | Path, val_split: float = 0.2, vis_threshold: float = 0.3,
                     min_per_person: int = 8, max_per_person: int = 1000, nproc: int = 1,
                     force: bool = False) -> list[dict]:
    """Crop people from ROOT/train into OUT/imgs and write OUT/meta/{train_80,val_20,train}.txt
    lists (`{person folder}/{crop} {label}`); identities are split by sorted folder name."""
    if not 0.0 <= val_split < 1.0:
        raise DataError(f"--val-split: expected a value in [0, 1), got {val_split}")
    root = require_dir(root, "MOT root")
    train = require_dir(root / "train", "MOT train folder")
    mot15 = "MOT15" in str(root.resolve())
    seqs = [p for p in sorted(train.iterdir()) if p.is_dir()]
    if "MOT17" in str(root.resolve()):
        # MOT17 ships each video three times (DPM, FRCNN, SDP detections) with the same gt.
        seqs = [p for p in seqs if "FRCNN" in p.name]
    if not seqs:
        raise DataError(f"{train}: no sequence folders")
    out_dir = Path(out_dir)
    imgs, meta = out_dir / "imgs", out_dir / "meta"
    train_name, val_name = f"train_{int(100 * (1 - val_split))}.txt", f"val_{int(100 * val_split)}.txt"
    plan_outputs([imgs, meta / train_name, meta / val_name, meta / "train.txt"], force)
    if imgs.exists():
        import shutil

        shutil.rmtree(imgs)  # --force: old crops would mix with new ones
    jobs = [(str(p), str(imgs), float(vis_threshold), mot15) for p in seqs]
    per_video = parallel_map(_reid_video, jobs, nproc, "mot-reid crops", min_parallel=2)
    counts = {person: n for video in per_video for person, n in video.items()}
    people = sorted(counts)
    n_train = int(len(people) * (1 - val_split))
    rng = random.Random(0)

    def listing(names: list[str]) -> list[list[str]]:
        groups = []
        for person in names:
            files = [f"{i:06d}.jpg" for i in range(counts[person])]
            if len(files) < min_per_person:
                continue
            if len(files) > max_per_person:
                files = sorted(rng.sample(files, max_per_person))
            groups.append([f"{person}/{f}" for f in files])
        return groups

    train_groups, val_groups = listing(people[:n_train]), listing(people[n_train:])
    train_lines = [f"{item} {label}\n" for label, group in enumerate(train_groups) for item in group]
    val_lines = [f"{item} {label}\n" for label, group in enumerate(val_groups) for item in group]
    all_lines = train_lines + [f"{item} {len(train_groups) + label}\n" for label, group in enumerate(val_groups) for item in group]
    write_text(meta / train_name, "".join(train_lines))
    write_text(meta / val_name, "".join(val_lines))
    write_text(meta / "train.txt", "".join(all_lines))
    return [
        summary(imgs, crops=sum(counts.values()), identities=len(people)),
        summary(meta / train_name, identities=len(train_groups), images=len(train_lines)),
        summary(meta / val_name, identities=len(val_groups), images=len(val_lines)),
        summary(meta / "train.txt", identities=len(train_groups) + len(val_groups), images=len(all_lines)),
    ]
