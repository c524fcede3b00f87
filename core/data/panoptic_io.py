"""COCO panoptic files: segment-id PNGs (read/written atomically) and the prediction writer
(PNG folder + segments JSON) shared by datasets, the metric, `det eval`, and the inference
commands."""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from det.core.errors import DataError, DetError
from det.core.structures.panoptic import PanopticPrediction, rgb2id


def read_segment_ids(path: str | Path, what: str = "panoptic PNG") -> np.ndarray:
    """(H, W) int64 segment ids of a COCO panoptic PNG; DataError naming the file otherwise."""
    try:
        data = np.fromfile(str(path), dtype=np.uint8)
    except OSError as exc:
        raise DataError(f"{path}: cannot read {what} ({exc.strerror or type(exc).__name__})") from None
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if img is None or img.ndim != 3 or img.shape[2] < 3:
        raise DataError(f"{path}: not an RGB {what}")
    return rgb2id(cv2.cvtColor(img[..., :3], cv2.COLOR_BGR2RGB))


def write_png(path: str | Path, img: np.ndarray) -> Path:
    """Encode `img` (BGR or single channel) as PNG and write it atomically."""
    from det.core.fileio import atomic_write

    ok, buf = cv2.imencode(".png", img)
    if not ok:
        raise OSError(f"{path}: cannot encode PNG")
    return atomic_write(path, lambda fh: fh.write(buf.tobytes()))


def png_name(file_name: str) -> str:
    """The panoptic PNG name of an image: its file name with a .png suffix (COCO's rule)."""
    return str(Path(file_name).with_suffix(".png").name)


class PanopticPredictionWriter:
    """The COCO panoptic prediction files written as results come: `add(image, pred)` writes
    the image's PNG into `png_dir` at once (memory does not grow with the dataset), `close()`
    the JSON `{annotations: [{image_id, file_name, segments_info}], categories}`. Nothing is
    replaced without `force`; every file is written atomically. `gather` (det test on several
    processes) collects every rank's annotations into the main process's JSON."""

    def __init__(self, json_path: str | Path, categories: list[dict], cat_ids: list[int],
                 png_dir: str | Path | None = None, force: bool = False) -> None:
        from det.core.fileio import ensure_new, ensure_writable_folder

        self.json_path = ensure_new(json_path, force)
        self.png_dir = Path(png_dir) if png_dir is not None else self.json_path.with_suffix("")
        ensure_writable_folder(self.png_dir)
        self.categories, self.cat_ids, self.force = categories, list(cat_ids), force
        self.annotations: list[dict] = []

    def add(self, image: dict, pred: PanopticPrediction) -> None:
        """Write the PNG of one image (record with `id` and `file_name`) and keep its segments."""
        name = png_name(str(image["file_name"]))
        target = self.png_dir / name
        if target.exists() and not self.force:
            raise DetError(f"{target}: already exists (use --force to overwrite)")
        rgb, info = pred.to_coco(self.cat_ids)
        write_png(target, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        self.annotations.append({"image_id": image["id"], "file_name": name, "segments_info": info})

    def close(self, gather: bool = False) -> dict[str, Any]:
        """Write the JSON (on the main process when `gather`); returns {json, png_dir, images, segments}."""
        from det.core import dist
        from det.core.fileio import atomic_write_json

        annotations = self.annotations
        if gather:
            annotations = sorted((a for part in dist.all_gather_object(annotations) for a in part),
                                 key=lambda a: a["image_id"])
        if not gather or dist.is_main():
            atomic_write_json(self.json_path, {"annotations": annotations, "categories": self.categories})
        return {"json": str(self.json_path), "png_dir": str(self.png_dir), "images": len(annotations),
                "segments": sum(len(a["segments_info"]) for a in annotations)}


def write_panoptic_predictions(json_path: str | Path, predictions: Iterable[tuple[dict, PanopticPrediction]],
                               categories: list[dict], cat_ids: list[int], png_dir: str | Path | None = None,
                               force: bool = False) -> dict[str, Any]:
    """Write predictions in the COCO panoptic format: PNGs into `png_dir` (default: the JSON
    path without `.json`) and `{annotations: [{image_id, file_name, segments_info}],
    categories}` to `json_path`. `predictions` yields (image record with `id` and `file_name`,
    PanopticPrediction). Nothing is replaced without `force`; every file is written atomically,
    the JSON last. Returns {json, png_dir, images, segments}."""
    writer = PanopticPredictionWriter(json_path, categories, cat_ids, png_dir, force)
    for image, pred in predictions:
        writer.add(image, pred)
    return writer.close()
