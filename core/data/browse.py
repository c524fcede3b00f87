"""Look at a preset's data: draw ground truth after the pipeline (or on raw images) and
summarise per-class counts and box sizes. Used by `det browse`."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from det.core.errors import ConfigError

SPLITS = ("train", "val", "test")


def loader_section(cfg: dict, split: str) -> dict:
    """`data.<split>` of a resolved preset, with a clear error when missing."""
    if split not in SPLITS:
        raise ConfigError(f"split must be one of {', '.join(SPLITS)}, got '{split}'")
    data = cfg.get("data") or {}
    section = data.get(split)
    if not isinstance(section, dict) or "dataset" not in section:
        raise ConfigError(f"data.{split}.dataset: missing (the preset has no {split} data)")
    return section


def build_browse_dataset(cfg: dict, split: str, raw: bool) -> Any:
    """The split's dataset with its pipeline, or with only image + annotation loading (`raw`)."""
    from det.core.config.build import at_path
    from det.core.data.loader import build_dataset

    section = loader_section(cfg, split)
    with at_path("data", split):
        dataset = build_dataset(section["dataset"], key="dataset")
        if raw and hasattr(dataset, "num_things"):  # panoptic: thing masks and the semantic map
            dataset.set_pipeline([{"type": "LoadImage"}, {"type": "LoadPanopticAnnotations"}, {"type": "Pack"}])
        elif raw:
            dataset.set_pipeline([{"type": "LoadImage"}, {"type": "LoadAnnotations", "with_mask": _has_masks(dataset)},
                                  {"type": "Pack"}])
        else:
            dataset.set_pipeline(section.get("pipeline") or [])
    return dataset


def _has_masks(dataset: Any) -> bool:
    for info in dataset.data_list[:50]:
        if any(i.get("mask") is not None for i in info["instances"]):
            return True
    return False


def render_samples(dataset: Any, limit: int | None, seed: int = 0) -> Iterator[tuple[int, str, np.ndarray]]:
    """(index, image path, drawn BGR image) for the first `limit` samples."""
    from det.core.data.transforms.rng import seed_all
    from det.core.vis import draw_instances

    seed_all(seed)
    n = len(dataset) if limit is None else min(limit, len(dataset))
    for i in range(n):
        item = dataset[i]
        if not isinstance(item, dict) or "inputs" not in item:
            raise ConfigError("the pipeline must end with Pack to be browsed (or use --raw)")
        img = np.ascontiguousarray(item["inputs"].numpy().transpose(1, 2, 0))
        gt = item["sample"].gt
        if getattr(item["sample"], "gt_sem_seg", None) is not None and hasattr(dataset, "num_things"):
            yield i, item["sample"].img_path, _draw_panoptic(img, item["sample"], dataset)
            continue
        drawn = draw_instances(img, gt.bboxes, gt.labels, dataset.classes, masks=gt.masks, palette=dataset.palette)
        yield i, item["sample"].img_path, drawn


def _draw_panoptic(img: np.ndarray, sample: Any, dataset: Any) -> np.ndarray:
    from det.core.vis.panoptic import draw_panoptic

    gt = sample.gt
    masks = None if gt.masks is None else gt.masks.numpy()
    return draw_panoptic(img, sample.gt_sem_seg.numpy(), masks, gt.labels.tolist(), dataset.classes, dataset.palette,
                         dataset.num_things)


def dataset_stats(dataset: Any) -> dict:
    """Per-class instance/image/ignored counts and box-size statistics of the annotations (in
    original image pixels; COCO size ranges: small < 32^2 <= medium < 96^2 <= large)."""
    classes = list(dataset.classes)
    per = {c: {"instances": 0, "images": 0, "ignored": 0} for c in classes}
    widths, heights, labels = [], [], []
    img_w, img_h = [], []
    empty = 0
    for info in dataset.data_list:
        img_w.append(info["width"])
        img_h.append(info["height"])
        seen = set()
        kept = 0
        for inst in info["instances"]:
            name = classes[int(inst["bbox_label"])]
            if inst.get("ignore_flag", False):
                per[name]["ignored"] += 1
                continue
            kept += 1
            per[name]["instances"] += 1
            seen.add(name)
            x1, y1, x2, y2 = inst["bbox"]
            widths.append(x2 - x1)
            heights.append(y2 - y1)
            labels.append(int(inst["bbox_label"]))
        for name in seen:
            per[name]["images"] += 1
        empty += kept == 0
    w, h = np.array(widths, np.float64), np.array(heights, np.float64)
    area = w * h
    lab = np.array(labels, np.int64)

    def summary(values: np.ndarray) -> dict:
        if not len(values):
            return {"min": None, "median": None, "mean": None, "max": None}
        return {"min": float(values.min()), "median": float(np.median(values)), "mean": float(values.mean()),
                "max": float(values.max())}

    for k, name in enumerate(classes):
        sel = lab == k
        per[name]["sqrt_area"] = summary(np.sqrt(area[sel]))
    return {
        "num_images": len(dataset.data_list),
        "images_without_instances": int(empty),
        "image_width": summary(np.array(img_w, np.float64)),
        "image_height": summary(np.array(img_h, np.float64)),
        "num_instances": int(len(w)),
        "per_class": per,
        "box_width": summary(w),
        "box_height": summary(h),
        "box_sqrt_area": summary(np.sqrt(area)),
        "box_aspect_ratio_h_over_w": summary(h / np.maximum(w, 1e-9)),
        "size_ranges": {"small": int((area < 32**2).sum()), "medium": int(((area >= 32**2) & (area < 96**2)).sum()),
                        "large": int((area >= 96**2).sum())},
    }


def write_image(path: Path, img: np.ndarray) -> None:
    import cv2

    from det.core.fileio import atomic_write

    ok, buf = cv2.imencode(".png", img)
    if not ok:
        raise OSError(f"{path}: cannot encode image")
    atomic_write(path, lambda fh: fh.write(buf.tobytes()))
