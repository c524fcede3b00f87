"""Match costs of the DETR family's Hungarian matching (MMDetection's names and formulas).

Each cost maps predictions (class logits (Q, K), xyxy boxes (Q, 4) in input pixels) and ground
truth (labels (G,), xyxy boxes (G, 4)) of one image of size `img_shape` (h, w) to a (Q, G)
matrix, multiplied by `weight`.
"""
from __future__ import annotations

import torch

from det.core.config.build import config_path
from det.core.errors import ConfigError
from det.core.structures.boxes import box_overlaps, xyxy_to_cxcywh


def _choice(value: str, options: tuple[str, ...], key: str) -> str:
    if value not in options:
        raise ConfigError(f"{config_path(key)}: '{value}' is not {' or '.join(options)}")
    return value


class ClassificationCost:
    """-softmax(logits)[:, label] (DETR's cross-entropy head)."""

    def __init__(self, weight: float = 1.0) -> None:
        self.weight = weight

    def __call__(self, scores, bboxes, gt_labels, gt_bboxes, img_shape) -> torch.Tensor:
        return -scores.softmax(-1)[:, gt_labels] * self.weight


class FocalLossCost:
    """Focal-loss positive cost minus negative cost of the gt's class (sigmoid heads)."""

    def __init__(self, alpha: float = 0.25, gamma: float = 2.0, eps: float = 1e-12, weight: float = 1.0) -> None:
        self.alpha, self.gamma, self.eps, self.weight = alpha, gamma, eps, weight

    def __call__(self, scores, bboxes, gt_labels, gt_bboxes, img_shape) -> torch.Tensor:
        p = scores.sigmoid()[:, gt_labels]
        neg = -(1 - p + self.eps).log() * (1 - self.alpha) * p.pow(self.gamma)
        pos = -(p + self.eps).log() * self.alpha * (1 - p).pow(self.gamma)
        return (pos - neg) * self.weight


class BBoxL1Cost:
    """L1 distance of boxes normalised by the image size, as xyxy or as (cx, cy, w, h)."""

    def __init__(self, box_format: str = "xyxy", weight: float = 1.0) -> None:
        self.box_format, self.weight = _choice(box_format, ("xyxy", "xywh"), "box_format"), weight

    def __call__(self, scores, bboxes, gt_labels, gt_bboxes, img_shape) -> torch.Tensor:
        if self.box_format == "xywh":
            bboxes, gt_bboxes = xyxy_to_cxcywh(bboxes), xyxy_to_cxcywh(gt_bboxes)
        h, w = img_shape
        factor = bboxes.new_tensor([w, h, w, h])
        return torch.cdist(bboxes / factor, gt_bboxes / factor, p=1) * self.weight


class IoUCost:
    """-IoU or -GIoU of every prediction / gt pair."""

    def __init__(self, iou_mode: str = "giou", weight: float = 1.0) -> None:
        self.iou_mode, self.weight = _choice(iou_mode, ("iou", "giou"), "iou_mode"), weight

    def __call__(self, scores, bboxes, gt_labels, gt_bboxes, img_shape) -> torch.Tensor:
        return -box_overlaps(bboxes.float(), gt_bboxes.float(), self.iou_mode) * self.weight


MATCH_COSTS = {"ClassificationCost": ClassificationCost, "FocalLossCost": FocalLossCost, "BBoxL1Cost": BBoxL1Cost,
               "IoUCost": IoUCost}
