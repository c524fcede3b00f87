"""The one place where models import detection ops (NMS, focal loss, box overlaps)."""
from __future__ import annotations

try:
    from det.ops import batched_nms, bbox_overlaps, sigmoid_focal_loss
except ImportError:  # det.ops is being written in parallel; torchvision until it lands
    import torch
    from torchvision.ops import batched_nms as _tv_batched_nms
    from torchvision.ops import box_iou
    from torchvision.ops import sigmoid_focal_loss as _tv_focal

    def batched_nms(boxes, scores, idxs, iou_threshold):
        return _tv_batched_nms(boxes, scores, idxs, iou_threshold)

    def sigmoid_focal_loss(inputs, targets, alpha=0.25, gamma=2.0, reduction="none", weight=None):
        loss = _tv_focal(inputs, targets, alpha, gamma, "none")
        if weight is not None:
            loss = loss * weight
        return loss.sum() if reduction == "sum" else loss.mean() if reduction == "mean" else loss

    def bbox_overlaps(a, b, mode="iou", aligned=False, eps=1e-6):
        if mode != "iou" or aligned:
            lt = torch.max(a[:, None, :2], b[None, :, :2])
            rb = torch.min(a[:, None, 2:], b[None, :, 2:])
            wh = (rb - lt).clamp(min=0)
            inter = wh[..., 0] * wh[..., 1]
            area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
            if mode == "iof":
                return inter / area_a[:, None].clamp(min=eps)
            raise ValueError(mode)
        return box_iou(a, b)

__all__ = ["batched_nms", "bbox_overlaps", "sigmoid_focal_loss"]
