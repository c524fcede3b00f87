"""Where predictions go: per-image JSON files, JSON Lines on a stream, one COCO results file,
COCO panoptic PNGs + segments JSON, drawn images and a drawn video."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

import cv2
import numpy as np

from det.core.errors import DetError
from det.core.fileio import atomic_write, atomic_write_json, dumps_strict, read_json
from det.core.inference.prediction import Prediction
from det.core.log import get_logger

FORMATS = ("json", "jsonl", "coco")


class JsonWriter:
    """OUT/preds/<name>.json, one file per image, written atomically."""

    def __init__(self, out_dir: str | Path) -> None:
        self.dir = Path(out_dir) / "preds"
        self.count = 0

    def write(self, pred: Prediction, image: np.ndarray | None = None) -> None:
        atomic_write_json(self.dir / f"{pred.name}.json", pred.to_dict())
        self.count += 1

    def close(self) -> None:
        pass


class JsonlWriter:
    """One JSON object per image and line on `stream` (stdout), flushed per line so a reader
    downstream (`| jq`) sees results as they come."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.count = 0

    def write(self, pred: Prediction, image: np.ndarray | None = None) -> None:
        self.stream.write(dumps_strict(pred.to_dict(), separators=(",", ":")) + "\n")
        self.stream.flush()
        self.count += 1

    def close(self) -> None:
        pass


class CocoWriter:
    """Collects COCO results (`image_id`, `category_id`, `bbox` xywh, `score`, `segmentation`
    RLE for masks) with ids from a COCO annotation file; written once on close()."""

    def __init__(self, path: str | Path, ann_file: str | Path, class_names: Sequence[str]) -> None:
        self.path = Path(path)
        ann = read_json(ann_file, "COCO annotation file")
        if not isinstance(ann, dict) or "images" not in ann or "categories" not in ann:
            raise DetError(f"{ann_file}: not a COCO annotation file (needs 'images' and 'categories')")
        self.by_path: dict[str, int] = {}
        self.by_name: dict[str, list[int]] = {}
        for img in ann["images"]:
            fn = str(img["file_name"]).replace("\\", "/")
            self.by_path[fn] = int(img["id"])
            self.by_name.setdefault(Path(fn).name, []).append(int(img["id"]))
        self.cat_ids = _category_map(ann["categories"], class_names, str(ann_file))
        self.ann_file = str(ann_file)
        self.results: list[dict[str, Any]] = []
        self.missing: list[str] = []
        self.count = 0

    def image_id(self, img_path: str) -> int | None:
        """The annotation file's id for an image: the longest `file_name` that the path ends
        with, else a unique base-name match."""
        p = img_path.replace("\\", "/")
        parts = p.split("/")
        for i in range(len(parts)):
            hit = self.by_path.get("/".join(parts[i:]))
            if hit is not None:
                return hit
        ids = self.by_name.get(Path(p).name, [])
        return ids[0] if len(ids) == 1 else None

    def write(self, pred: Prediction, image: np.ndarray | None = None) -> None:
        img_id = self.image_id(pred.img_path)
        if img_id is None:
            self.missing.append(pred.img_path)
            get_logger().warning("%s: not in %s; left out of the COCO results", pred.img_path, self.ann_file)
            return
        self.results += pred.to_coco(img_id, self.cat_ids, decimals=(2, 5))
        self.count += 1

    def close(self) -> None:
        atomic_write_json(self.path, self.results)


def _category_map(categories: list[dict], class_names: Sequence[str], ann_file: str) -> dict[int, int]:
    """Model label -> COCO category id, by class name (MMDetection's convention), else by
    position in id order when the counts agree and the names do not."""
    by_name = {str(c["name"]): int(c["id"]) for c in categories}
    if class_names and all(n in by_name for n in class_names):
        return {i: by_name[n] for i, n in enumerate(class_names)}
    ids = sorted(int(c["id"]) for c in categories)
    if len(ids) == len(class_names):
        get_logger().warning("%s: category names differ from the model's classes; matching them by id order", ann_file)
        return dict(enumerate(ids))
    missing = [n for n in class_names if n not in by_name]
    raise DetError(f"{ann_file}: categories do not match the model's classes (missing: {', '.join(missing[:5])})")


class PanopticWriter:
    """OUT/panoptic.json + OUT/panoptic/<name>.png: the fused panoptic results in the COCO
    panoptic format (`PanopticPredictionWriter`), category ids 1..N in class order, image ids in
    input order; each PNG written as its image comes, the JSON on close()."""

    def __init__(self, out_dir: str | Path, class_names: Sequence[str], num_things: int, force: bool = False) -> None:
        from det.core.data.panoptic_io import PanopticPredictionWriter

        categories = [{"id": i + 1, "name": n, "isthing": int(i < num_things)} for i, n in enumerate(class_names)]
        self.writer = PanopticPredictionWriter(Path(out_dir) / "panoptic.json", categories,
                                               [c["id"] for c in categories], force=force)
        self.count = 0

    def write(self, pred: Prediction, image: np.ndarray | None = None) -> None:
        if pred.panoptic is None:
            raise DetError(f"{pred.img_path or pred.name}: the model gave no panoptic result")
        self.count += 1
        self.writer.add({"id": self.count, "file_name": f"{pred.name}.png"}, pred.panoptic)

    def close(self) -> None:
        self.writer.close()


class VisWriter:
    """OUT/vis/<name>.jpg: the image with its predictions drawn."""

    def __init__(self, out_dir: str | Path, class_names: Sequence[str], quality: int = 90) -> None:
        self.dir = Path(out_dir) / "vis"
        self.class_names = list(class_names)
        self.quality = quality
        self.count = 0

    def draw(self, pred: Prediction, image: np.ndarray) -> np.ndarray:
        from det.core.vis import draw_instances

        if pred.panoptic is not None:  # the fused segments, stuff and things
            return pred.plot(image)
        return draw_instances(image, pred.bboxes, pred.labels, self.class_names, scores=pred.scores,
                              masks=pred.masks, track_ids=pred.track_ids)

    def write(self, pred: Prediction, image: np.ndarray | None = None, drawn: np.ndarray | None = None) -> np.ndarray:
        if drawn is None:
            drawn = self.draw(pred, image)
        ok, buf = cv2.imencode(".jpg", drawn, [cv2.IMWRITE_JPEG_QUALITY, self.quality])
        if not ok:
            raise DetError(f"{pred.img_path}: cannot encode the drawn image")
        atomic_write(self.dir / f"{pred.name}.jpg", lambda fh: fh.write(buf.tobytes()))
        self.count += 1
        return drawn
