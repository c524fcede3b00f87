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


def write_panoptic_predictions(json_path: str | Path, predictions: Iterable[tuple[dict, PanopticPrediction]],
                               categories: list[dict], cat_ids: list[int], png_dir: str | Path | None = None,
                               force: bool = False) -> dict[str, Any]:
    """Write predictions in the COCO panoptic format: PNGs into `png_dir` (default: the JSON
    path without `.json`) and `{annotations: [{image_id, file_name, segments_info}],
    categories}` to `json_path`. `predictions` yields (image record with `id` and `file_name`,
    PanopticPrediction). Nothing is replaced without `force`; every file is written atomically,
    the JSON last. Returns {json, png_dir, images, segments}."""
    from det.core.fileio import atomic_write_json, ensure_new, ensure_writable_folder

    json_path = ensure_new(json_path, force)
    png_dir = Path(png_dir) if png_dir is not None else json_path.with_suffix("")
    ensure_writable_folder(png_dir)
    annotations, segments = [], 0
    for image, pred in predictions:
        name = png_name(str(image["file_name"]))
        target = png_dir / name
        if target.exists() and not force:
            raise DetError(f"{target}: already exists (use --force to overwrite)")
        rgb, info = pred.to_coco(cat_ids)
        write_png(target, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        annotations.append({"image_id": image["id"], "file_name": name, "segments_info": info})
        segments += len(info)
    atomic_write_json(json_path, {"annotations": annotations, "categories": categories})
    return {"json": str(json_path), "png_dir": str(png_dir), "images": len(annotations), "segments": segments}
