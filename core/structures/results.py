"""`Instances`: det's one result type, shared by models, evaluation, inference and tracking.

Fields hold torch tensors (models, evaluation) or numpy arrays (inference, tracking), and the
views convert between them as Ultralytics' `Results` does: `.numpy()`, `.cpu()`, `.to(device)`.
Indexing with an int, slice, index array or boolean mask selects instances (every
per-instance field at once); `.filter()` keeps instances by score and class; `.to_coco()` writes
COCO result records. `det.core.inference.prediction.Prediction` is this type plus the image's
metadata (path, size, class names) that `det infer` reports.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch

from det.core.errors import DataError
from det.core.structures.masks import bitmap_to_rle


def _numpy(v: Any) -> Any:
    """A tensor or mask structure as a numpy array (masks as bool); anything else unchanged."""
    if isinstance(v, torch.Tensor):
        v = v.detach().cpu()
        return (v.float() if v.dtype in (torch.float16, torch.bfloat16) else v).numpy()
    for attr in ("to_ndarray", "numpy"):
        if hasattr(v, attr) and not isinstance(v, np.ndarray):
            return np.asarray(getattr(v, attr)()).astype(bool)
    return v


def _indices(index: Any, n: int) -> np.ndarray:
    """Any index (int, slice, index array or boolean mask; numpy or torch) as int64 positions."""
    if isinstance(index, torch.Tensor):
        index = index.detach().cpu().numpy()
    if isinstance(index, (int, np.integer)):
        index = [int(index)]
    return np.arange(n)[index].reshape(-1)


@dataclass
class Instances:
    """A set of instances in one image. `bboxes` are xyxy in the coordinates of the image
    they refer to (network input for ground truth, original image for predictions)."""

    bboxes: Any = field(default_factory=lambda: torch.zeros((0, 4)))
    labels: Any = field(default_factory=lambda: torch.zeros((0,), dtype=torch.long))
    scores: Any = None
    ignore: Any = None  # bool (N,), True = ignored (crowd / difficult)
    masks: Any = None  # (N, H, W) bool tensor or array, or a mask structure from core.data
    track_ids: Any = None  # (N,) int64 when a tracker ran

    PER_INSTANCE: ClassVar[tuple[str, ...]] = ("bboxes", "labels", "scores", "ignore", "masks", "track_ids")

    def __len__(self) -> int:
        return int(self.bboxes.shape[0])

    def _map(self, fn: Any) -> Any:
        """A copy with `fn` applied to every per-instance field that is set."""
        return dataclasses.replace(self, **{k: fn(getattr(self, k)) for k in self.PER_INSTANCE
                                            if getattr(self, k) is not None})

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, (int, np.integer)):  # one instance stays a set of one
            index = _indices(index, len(self))

        def pick(v: Any) -> Any:
            if isinstance(v, torch.Tensor):  # a torch index stays on its device (no host sync)
                i = index if isinstance(index, (torch.Tensor, slice)) else torch.as_tensor(np.asarray(index))
                return v[i.to(v.device) if isinstance(i, torch.Tensor) else i]
            if isinstance(v, list):
                return [v[i] for i in _indices(index, len(v))]
            return v[index.detach().cpu().numpy() if isinstance(index, torch.Tensor) else index]

        return self._map(pick)

    def numpy(self) -> Any:
        """The numpy view: every tensor (and mask structure) as an array on the CPU."""
        return self._map(_numpy)

    def cpu(self) -> Any:
        """Tensors moved to the CPU (arrays unchanged)."""
        return self._map(lambda v: v.cpu() if isinstance(v, torch.Tensor) else v)

    def to(self, device: torch.device | str) -> Any:
        """The torch view on `device`: arrays become tensors."""
        def move(v: Any) -> Any:
            if isinstance(v, np.ndarray):
                v = torch.from_numpy(np.ascontiguousarray(v))
            return v.to(device) if isinstance(v, torch.Tensor) else v

        return self._map(move)

    def filter(self, score_thr: float | None = None, classes: Sequence[int] | None = None) -> Any:
        """The instances scoring at least `score_thr` whose label is in `classes`."""
        view = self.numpy()
        keep = np.ones(len(self), bool)
        if score_thr is not None and view.scores is not None:
            keep &= np.asarray(view.scores) >= score_thr
        if classes is not None:
            keep &= np.isin(np.asarray(view.labels), np.asarray(list(classes), np.int64))
        return self[keep]

    def to_coco(self, img_id: int, cat_ids: Sequence[int] | Mapping[int, int], with_masks: bool = True,
                decimals: tuple[int, int] | None = None) -> list[dict]:
        """COCO result records (`bbox` xywh, `segmentation` RLE when masks are set and asked);
        `cat_ids[label]` is each label's category id; `decimals` rounds (box, score)."""
        view = self.numpy()
        boxes = np.asarray(view.bboxes, np.float64).reshape(-1, 4)
        scores = np.ones(len(boxes)) if view.scores is None else np.asarray(view.scores, np.float64)
        masks = view.masks if with_masks else None
        out = []
        for i, label in enumerate(np.asarray(view.labels).tolist()):
            x1, y1, x2, y2 = boxes[i].tolist()
            xywh, score = [x1, y1, x2 - x1, y2 - y1], float(scores[i])
            if decimals is not None:
                xywh, score = [round(v, decimals[0]) for v in xywh], round(score, decimals[1])
            rec = {"image_id": int(img_id), "category_id": _category(cat_ids, int(label)), "bbox": xywh, "score": score}
            if masks is not None:
                rec["segmentation"] = bitmap_to_rle(masks[i])
            out.append(rec)
        return out


def _category(cat_ids: Sequence[int] | Mapping[int, int], label: int) -> int:
    if isinstance(cat_ids, Mapping):
        if label in cat_ids:
            return int(cat_ids[label])
    elif 0 <= label < len(cat_ids):
        return int(cat_ids[label])
    raise DataError(f"prediction label {label} outside the dataset's {len(cat_ids)} classes")
