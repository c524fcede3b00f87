"""The per-image result of inference: numpy arrays in original-image pixels, JSON-ready."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from det.core.structures import Instances, bitmap_to_rle


@dataclass
class Prediction(Instances):
    """Detections in one image (`Instances` with numpy fields, plus the image's metadata):
    `bboxes` xyxy (N, 4) float32 in original-image pixels; `masks` (N, H, W) bool or None;
    `track_ids` (N,) int64 when a tracker ran; `class_names` the name of each instance's class."""

    bboxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))
    labels: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.int64))
    scores: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.float32))
    img_path: str = ""
    height: int = 0
    width: int = 0
    class_names: list[str] = field(default_factory=list)
    name: str = ""
    frame: int | None = None
    image: np.ndarray | None = field(default=None, repr=False, compare=False)  # the BGR input, when kept
    # a panoptic model's fused result (PanopticPrediction, original pixels); the instances above
    # are the detections its thing segments came from
    panoptic: Any = field(default=None, repr=False, compare=False)
    num_things: int = 0  # classes [0, num_things) are things (panoptic models)
    panoptic_classes: list[str] = field(default_factory=list, repr=False)  # every class, by label

    PER_INSTANCE: ClassVar[tuple[str, ...]] = (*Instances.PER_INSTANCE, "class_names")

    def select(self, keep: np.ndarray) -> "Prediction":
        """A copy holding only the instances picked by a boolean mask or an index array."""
        return self[keep]

    def plot(self, image: np.ndarray | None = None) -> np.ndarray:
        """The image (given, kept from the input, or read from `img_path`) with the
        predictions drawn: a BGR uint8 array.

            pred = Detector.from_checkpoint("runs/train/1/last.pt")("street.jpg")
            cv2.imwrite("drawn.jpg", pred.plot())
        """
        from det.core.errors import DetError
        from det.core.inference.reader import imread
        from det.core.vis import draw_instances

        img = image if image is not None else self.image if self.image is not None else (
            imread(self.img_path) if self.img_path else None)
        if img is None:
            raise DetError(f"Prediction.plot: no image ({self.img_path or 'the input was not kept'}); pass image=")
        if self.panoptic is not None:
            from det.core.vis.panoptic import draw_panoptic_prediction

            return draw_panoptic_prediction(img, self.panoptic, self.panoptic_classes, self.num_things)
        return draw_instances(img, self.bboxes, self.labels, self._names(),
                              scores=self.scores, masks=self.masks, track_ids=self.track_ids)

    def _names(self) -> list[str]:
        """Class names indexed by label (from the per-instance names)."""
        names: dict[int, str] = {int(lab): n for lab, n in zip(self.labels, self.class_names)}
        return [names.get(i, str(i)) for i in range(max(names, default=-1) + 1)]

    def save(self, path: str | Path, image: np.ndarray | None = None, force: bool = False) -> Path:
        """Write the drawn image (.jpg, .png, ...) or the JSON record (.json); refuses to
        overwrite an existing file unless `force`."""
        import cv2

        from det.core.errors import DetError
        from det.core.fileio import atomic_write, atomic_write_json, ensure_new

        path = ensure_new(path, force)
        if path.suffix.lower() == ".json":
            return atomic_write_json(path, self.to_dict())
        ok, buf = cv2.imencode(path.suffix or ".jpg", self.plot(image))
        if not ok:
            raise DetError(f"{path}: cannot encode an image with this extension (use .jpg, .png or .json)")
        return atomic_write(path, lambda fh: fh.write(buf.tobytes()))

    def to_dict(self) -> dict[str, Any]:
        """The per-image JSON record (`det infer` preds/<name>.json and --format jsonl)."""
        out: dict[str, Any] = {
            "img_path": self.img_path,
            "height": int(self.height),
            "width": int(self.width),
            "labels": [int(v) for v in self.labels],
            "class_names": list(self.class_names),
            "scores": [round(float(v), 5) for v in self.scores],
            "bboxes": [[round(float(v), 2) for v in box] for box in self.bboxes],
        }
        if self.frame is not None:
            out["frame"] = int(self.frame)
        if self.masks is not None:
            out["masks"] = [bitmap_to_rle(m) for m in self.masks]
        if self.track_ids is not None:
            out["track_ids"] = [int(v) for v in self.track_ids]
        if self.panoptic is not None:  # segment ids as in the panoptic PNG that det infer writes
            out["panoptic_segments"] = [
                {"id": int(s["id"]), "label": int(s["label"]), "isthing": bool(s["isthing"]),
                 "score": round(float(s.get("score", 1.0)), 5)} for s in self.panoptic.segments]
        return out


def from_instances(inst: Instances, class_names: list[str], img_path: str, height: int, width: int) -> Prediction:
    """A model's `Instances` (tensors) as a `Prediction` (numpy, float32 boxes and scores)."""
    view = inst.numpy()
    n = len(view)
    bboxes = np.asarray(view.bboxes, np.float32).reshape(n, 4)
    scores = np.asarray(view.scores, np.float32) if view.scores is not None else np.ones((n,), np.float32)
    labels = np.asarray(view.labels, np.int64)
    masks = None
    if view.masks is not None:
        masks = np.asarray(view.masks, bool).reshape(n, height, width) if n else np.zeros((0, height, width), bool)
    track_ids = np.asarray(view.track_ids, np.int64) if view.track_ids is not None else None
    names = [class_names[int(i)] if 0 <= int(i) < len(class_names) else str(int(i)) for i in labels]
    return Prediction(img_path=img_path, height=height, width=width, bboxes=bboxes, scores=scores,
                      labels=labels, class_names=names, masks=masks, track_ids=track_ids)
