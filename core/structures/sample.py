"""The per-image record passed from data to models to evaluation.

Data transforms work on plain dicts (fast to copy and extend); the final Pack transform turns
one into an image tensor plus a `DetSample`, which models and evaluators consume.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from det.core.structures.boxes import flip_boxes
from det.core.structures.results import Instances


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
    gt_sem_seg: torch.Tensor | None = None  # (H, W) uint8 labels of panoptic data, 255 = ignore
    pred: Instances | None = None
    meta: dict = field(default_factory=dict)

    @property
    def input_shape(self) -> tuple[int, int]:
        """(h, w) of the resized image inside the network input (before any padding)."""
        shape = self.img_shape if self.img_shape and self.img_shape[0] > 0 else self.batch_input_shape
        return int(shape[0]), int(shape[1])

    @property
    def valid_shape(self) -> tuple[int, int]:
        """(h, w) of the region holding data: padding by the Pad transform counts, batch padding not."""
        shape = tuple(self.pad_shape) if self.pad_shape and self.pad_shape[0] > 0 else tuple(self.img_shape)
        if not shape or shape[0] <= 0:
            shape = tuple(self.batch_input_shape)
        return int(shape[0]), int(shape[1])

    def unscale_boxes(self, boxes: torch.Tensor) -> torch.Tensor:
        """Boxes divided by the resize's `scale_factor` (input pixels -> original pixels)."""
        sw, sh = self.scale_factor
        return boxes / boxes.new_tensor([sw, sh, sw, sh])

    def output_shape(self, rescale: bool = True) -> tuple[int, int]:
        """(h, w) of predictions: the original image when `rescale` (and known), else the input."""
        if rescale and self.ori_shape and self.ori_shape[0] > 0:
            return int(self.ori_shape[0]), int(self.ori_shape[1])
        return self.input_shape

    def boxes_to_original(self, boxes: torch.Tensor, clip: bool = True) -> torch.Tensor:
        """Network-input xyxy boxes -> original image: undo the flip (inside `input_shape`), then
        the resize, then (with `clip`, when the original shape is known) clamp to the image."""
        if self.flip_direction:
            boxes = flip_boxes(boxes, *self.input_shape, self.flip_direction)
        boxes = self.unscale_boxes(boxes)
        if clip and self.ori_shape and self.ori_shape[0] > 0:
            oh, ow = self.ori_shape[:2]
            boxes = torch.stack([boxes[:, 0].clamp(0, ow), boxes[:, 1].clamp(0, oh),
                                 boxes[:, 2].clamp(0, ow), boxes[:, 3].clamp(0, oh)], dim=1)
        return boxes

    def unflip_maps(self, maps: torch.Tensor) -> torch.Tensor:
        """Undo the sample's flip on (..., H, W) maps (mask logits or probabilities)."""
        dims = {"horizontal": (-1,), "vertical": (-2,), "diagonal": (-1, -2)}.get(self.flip_direction or "")
        return maps.flip(dims) if dims else maps

    def gt_in_original(self) -> Instances:
        """The ground truth mapped back to the original image (flip and resize undone, unclipped)."""
        boxes = self.boxes_to_original(self.gt.bboxes.detach().cpu().float(), clip=False)
        return Instances(bboxes=boxes, labels=self.gt.labels, ignore=self.gt.ignore)

    def view(self, height: int, width: int, flip: bool) -> "DetSample":
        """A copy for a test-time view of the input image resized to (height, width) and
        optionally mirrored: shapes and scale factor follow the resize."""
        import copy

        out = copy.copy(self)
        h, w = self.input_shape
        sx, sy = self.scale_factor
        out.img_shape = (int(height), int(width))
        out.scale_factor = (sx * width / w, sy * height / h)
        out.flip_direction = "horizontal" if flip else None
        return out
