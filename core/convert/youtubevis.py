"""YouTube-VIS 2019/2021 -> COCO-video JSON (one image per frame, one annotation per object
per frame), as MMDetection's youtubevis2coco writes it: `youtube_vis_{version}_{mode}.json` for
modes train/valid/test; sources `{mode}.json` (2019) or `{mode}/instances.json` (2021); videos
keep their ids and get `name` = the first path component of their frames; images get ids from 1,
`frame_id` (0-based) and `video_id`; annotations (train only; frames where the object's box is
null are skipped) get ids from 1 and `instance_id` from 1 counted over the whole file.
"""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from det.core.convert.common import plan_outputs, present_modes, require_dir, summary, write_json
from det.core.errors import DataError
from det.core.fileio import read_json
from det.core.log import track

MODES = ("train", "valid", "test")
VERSIONS = ("2019", "2021")


def source_path(root: Path, version: str, mode: str) -> Path:
    return root / f"{mode}.json" if version == "2019" else root / mode / "instances.json"


def _field(obj: dict, key: str, path: Path, where: str):
    if not isinstance(obj, dict) or key not in obj:
        raise DataError(f"{path}: {where}: missing field '{key}'")
    return obj[key]


def convert_file(path: Path, with_annotations: bool) -> dict:
    data = read_json(path, "YouTube-VIS annotation file")
    categories = _field(data, "categories", path, "top level")
    videos_in = _field(data, "videos", path, "top level")
    by_video: dict[int, list[dict]] = defaultdict(list)
    if with_annotations:
        for index, ann in enumerate(_field(data, "annotations", path, "top level")):
            by_video[_field(ann, "video_id", path, f"annotations[{index}]")].append(ann)
    videos, images, annotations = [], [], []
    instance_ids: dict[tuple[int, int], int] = {}
    for vindex, video in enumerate(track(videos_in, f"youtubevis {path.name}")):
        where = f"videos[{vindex}]"
        files = _field(video, "file_names", path, where)
        vid, width, height = (_field(video, k, path, where) for k in ("id", "width", "height"))
        if not files:
            raise DataError(f"{path}: {where}: empty 'file_names'")
        videos.append({"id": vid, "name": str(files[0]).replace("\\", "/").split("/")[0], "width": width, "height": height})
        anns = by_video.get(vid, [])
        for frame_id, file_name in enumerate(files):
            img_id = len(images) + 1
            images.append({"file_name": file_name, "height": height, "width": width, "id": img_id,
                           "frame_id": frame_id, "video_id": vid})
            for ann in anns:
                aw = f"annotation id {ann.get('id')}"
                bboxes = _field(ann, "bboxes", path, aw)
                if frame_id >= len(bboxes):
                    raise DataError(f"{path}: {aw}: {len(bboxes)} boxes for a video of {len(files)} frames")
                if bboxes[frame_id] is None:
                    continue
                track_id = _field(ann, "id", path, aw)
                segmentation = _field(ann, "segmentations", path, aw)[frame_id]
                area = _field(ann, "areas", path, aw)[frame_id]
                if segmentation is None or area is None:
                    raise DataError(f"{path}: {aw}: frame {frame_id} has a box but no segmentation/area")
                key = (vid, track_id)
                if key not in instance_ids:
                    instance_ids[key] = len(instance_ids) + 1
                annotations.append({
                    "id": len(annotations) + 1, "video_id": vid, "image_id": img_id,
                    "category_id": _field(ann, "category_id", path, aw), "instance_id": instance_ids[key],
                    "bbox": bboxes[frame_id], "segmentation": segmentation, "area": area,
                    "iscrowd": ann.get("iscrowd", 0),
                })
    return {"categories": categories, "videos": videos, "images": images, "annotations": annotations}


def convert_youtubevis(root: str | Path, out_dir: str | Path, version: str, force: bool = False) -> list[dict]:
    if version not in VERSIONS:
        raise DataError(f"--version: expected 2019 or 2021, got {version!r}")
    root = require_dir(root, "YouTube-VIS root")
    modes = present_modes(MODES, lambda m: source_path(root, version, m),
                          f"{root}: no YouTube-VIS {version} annotation file ({source_path(root, version, 'train')}, ...)")
    paths = plan_outputs([Path(out_dir) / f"youtube_vis_{version}_{m}.json" for m in modes], force)
    rows = []
    for mode, path in zip(modes, paths):
        coco = convert_file(source_path(root, version, mode), with_annotations=mode == "train")
        write_json(path, coco)
        rows.append(summary(path, split=mode, videos=len(coco["videos"]), images=len(coco["images"]),
                            annotations=len(coco["annotations"])))
    return rows
