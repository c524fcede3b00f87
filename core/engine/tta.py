"""Test-time augmentation on network inputs: every image is also run horizontally flipped and at
extra scales; the model maps each view's boxes back to the original image (it undoes
`flip_direction` and `scale_factor`), and the views' detections are merged per class with NMS.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import batched_nms

from det.core.structures import Instances


def _view(inputs: torch.Tensor, samples: list, scale: float, flip: bool, divisor: int) -> tuple[torch.Tensor, list]:
    crops, new_samples = [], []
    for img, sample in zip(inputs, samples):
        h, w = (int(v) for v in sample.img_shape[:2])
        x = img[:, :h, :w]
        if scale != 1.0:
            nh, nw = max(1, int(round(h * scale))), max(1, int(round(w * scale)))
            x = F.interpolate(x[None].float(), size=(nh, nw), mode="bilinear", align_corners=False)[0]
            x = x.round().clamp(0, 255).to(img.dtype)
        if flip:
            x = x.flip(-1)
        crops.append(x)
        new_samples.append(sample.view(int(x.shape[1]), int(x.shape[2]), flip))
    hh = max(c.shape[1] for c in crops)
    ww = max(c.shape[2] for c in crops)
    if divisor > 1:
        hh, ww = math.ceil(hh / divisor) * divisor, math.ceil(ww / divisor) * divisor
    batch = inputs.new_zeros((len(crops), inputs.shape[1], hh, ww))
    for i, c in enumerate(crops):
        batch[i, :, : c.shape[1], : c.shape[2]] = c
    for s in new_samples:
        s.batch_input_shape = (hh, ww)
    return batch, new_samples


def merge_instances(parts: Sequence[Instances], iou_thr: float = 0.6, max_per_img: int = 100) -> Instances:
    """Concatenate detections of several views and keep the per-class NMS survivors."""
    boxes = torch.cat([p.bboxes.float() for p in parts])
    scores = torch.cat([p.scores.float() for p in parts])
    labels = torch.cat([p.labels for p in parts])
    keep = batched_nms(boxes, scores, labels, iou_thr)[:max_per_img]
    return Instances(bboxes=boxes[keep], labels=labels[keep], scores=scores[keep])


class TTAPredictor:
    """`predict(model, inputs, samples)` over flips x scales, merged with class-wise NMS."""

    def __init__(self, scales: Sequence[float] = (1.0,), flip: bool = True, iou_thr: float = 0.6, max_per_img: int = 100):
        self.scales, self.flip = tuple(float(s) for s in scales), flip
        self.iou_thr, self.max_per_img = iou_thr, max_per_img

    def __call__(self, model: nn.Module, inputs: torch.Tensor, samples: list) -> list[Instances]:
        divisor = int(getattr(getattr(model, "data_preprocessor", None), "pad_size_divisor", 1) or 1)
        views: list[list[Instances]] = [[] for _ in samples]
        for scale in self.scales:
            for flip in ((False, True) if self.flip else (False,)):
                batch, view_samples = _view(inputs, samples, scale, flip, divisor)
                for i, pred in enumerate(model.predict(batch, view_samples)):
                    views[i].append(pred)
        return [merge_instances(v, self.iou_thr, self.max_per_img) for v in views]
