"""Element-wise weighting and reduction shared by all losses (MMDetection semantics: with an
`avg_factor`, 'mean' is sum / avg_factor)."""
from __future__ import annotations

import torch

from det.core.config.build import config_path
from det.core.errors import ConfigError

REDUCTIONS = ("none", "mean", "sum")


def check_reduction(reduction: str) -> str:
    if reduction not in REDUCTIONS:
        raise ConfigError(f"{config_path('reduction')}: '{reduction}' is not one of {', '.join(REDUCTIONS)}")
    return reduction


def weight_reduce_loss(loss: torch.Tensor, weight: torch.Tensor | None = None, reduction: str = "mean",
                       avg_factor: float | torch.Tensor | None = None) -> torch.Tensor:
    if weight is not None:
        loss = loss * weight
    if avg_factor is None:
        if reduction == "mean":
            return loss.mean()
        if reduction == "sum":
            return loss.sum()
        return loss
    if reduction == "mean":
        return loss.sum() / (avg_factor + torch.finfo(torch.float32).eps)
    if reduction == "none":
        return loss
    raise ValueError("avg_factor can not be used with reduction='sum'")


def aligned_box_iou(pred: torch.Tensor, target: torch.Tensor, mode: str = "iou",
                    eps: float = 1e-6) -> torch.Tensor:
    """IoU or GIoU of row-aligned xyxy boxes (N, 4) x (N, 4) -> (N,), differentiable."""
    area_p = (pred[:, 2] - pred[:, 0]) * (pred[:, 3] - pred[:, 1])
    area_t = (target[:, 2] - target[:, 0]) * (target[:, 3] - target[:, 1])
    lt = torch.max(pred[:, :2], target[:, :2])
    rb = torch.min(pred[:, 2:], target[:, 2:])
    wh = (rb - lt).clamp(min=0)
    overlap = wh[:, 0] * wh[:, 1]
    union = (area_p + area_t - overlap).clamp(min=eps)
    ious = overlap / union
    if mode == "iou":
        return ious
    enc_lt = torch.min(pred[:, :2], target[:, :2])
    enc_rb = torch.max(pred[:, 2:], target[:, 2:])
    enc_wh = (enc_rb - enc_lt).clamp(min=0)
    enclose = (enc_wh[:, 0] * enc_wh[:, 1]).clamp(min=eps)
    return ious - (enclose - union) / enclose
