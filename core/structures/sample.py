"""The per-image record passed from data to models to evaluation.

Data transforms work on plain dicts (fast to copy and extend); the final Pack transform turns
one into an image tensor plus a `DetSample`, which models and evaluators consume.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch


@dataclass
class Instances:
    """A set of instances in one image. `bboxes` are xyxy in the coordinates of the image
    they refer to (network input for ground truth, original image for predictions)."""

    bboxes: torch.Tensor = field(default_factory=lambda: torch.zeros((0, 4)))
    labels: torch.Tensor = field(default_factory=lambda: torch.zeros((0,), dtype=torch.long))
    scores: torch.Tensor | None = None
    ignore: torch.Tensor | None = None  # bool (N,), True = ignored (crowd / difficult)
    masks: Any = None  # (N, H, W) bool tensor, or a mask structure from core.data
    track_ids: torch.Tensor | None = None

    def __len__(self) -> int:
        return int(self.bboxes.shape[0])

    def to(self, device: torch.device | str) -> "Instances":
        def move(v: Any) -> Any:
            return v.to(device) if isinstance(v, torch.Tensor) else v

        return Instances(**{k: move(getattr(self, k)) for k in self.__dataclass_fields__})

    def __getitem__(self, index: Any) -> "Instances":
        def pick(v: Any) -> Any:
            if v is None:
                return None
            if isinstance(v, torch.Tensor):
                return v[index]
            return v[index] if hasattr(v, "__getitem__") else v

        return Instances(**{k: pick(getattr(self, k)) for k in self.__dataclass_fields__})


@dataclass
class DetSample:
    """Metadata and annotations of one image after the data pipeline.

    Shapes are (height, width). `scale_factor` is (w_scale, h_scale) from the original image to
    the network input; `flip_direction` is None or 'horizontal'/'vertical'/'diagonal' and applies
    after scaling; `pad_shape` is the shape after padding, `batch_input_shape` after collation.
    """

    img_path: str = ""
    img_id: int = -1
    ori_shape: tuple[int, int] = (0, 0)
    img_shape: tuple[int, int] = (0, 0)
    pad_shape: tuple[int, int] = (0, 0)
    batch_input_shape: tuple[int, int] = (0, 0)
    scale_factor: tuple[float, float] = (1.0, 1.0)
    flip_direction: str | None = None
    gt: Instances = field(default_factory=Instances)
    pred: Instances | None = None
    meta: dict = field(default_factory=dict)
