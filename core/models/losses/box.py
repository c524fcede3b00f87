"""Box regression losses: L1, smooth L1, IoU (log or linear) and GIoU."""
from __future__ import annotations

import torch
from torch import nn

from det.core.config.build import config_path
from det.core.errors import ConfigError
from det.core.models.losses.utils import check_reduction, weight_reduce_loss
from det.core.structures.boxes import box_overlaps


class _BoxLoss(nn.Module):
    """Weighting/reduction around `self.elementwise(pred, target)` defined by each subclass."""

    def __init__(self, reduction: str, loss_weight: float) -> None:
        super().__init__()
        self.reduction = check_reduction(reduction)
        self.loss_weight = loss_weight

    def forward(self, pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None,
                avg_factor: float | None = None, reduction_override: str | None = None) -> torch.Tensor:
        reduction = reduction_override or self.reduction
        if pred.numel() == 0:
            return pred.sum() * 0
        loss = self.elementwise(pred.float(), target.float())
        if weight is not None and weight.dim() > loss.dim():
            weight = weight.mean(-1)
        return self.loss_weight * weight_reduce_loss(loss, weight, reduction, avg_factor)


class L1Loss(_BoxLoss):
    def __init__(self, reduction: str = "mean", loss_weight: float = 1.0) -> None:
        super().__init__(reduction, loss_weight)

    def elementwise(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return (pred - target).abs()


class SmoothL1Loss(_BoxLoss):
    def __init__(self, beta: float = 1.0, reduction: str = "mean", loss_weight: float = 1.0) -> None:
        super().__init__(reduction, loss_weight)
        self.beta = beta

    def elementwise(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        diff = (pred - target).abs()
        return torch.where(diff < self.beta, 0.5 * diff * diff / self.beta, diff - 0.5 * self.beta)


class IoULoss(_BoxLoss):
    """1 - IoU ('linear'), 1 - IoU**2 ('square') or -log(IoU) ('log', the default)."""

    def __init__(self, linear: bool = False, eps: float = 1e-6, reduction: str = "mean", loss_weight: float = 1.0,
                 mode: str = "log") -> None:
        super().__init__(reduction, loss_weight)
        if mode not in ("linear", "square", "log"):
            raise ConfigError(f"{config_path('mode')}: '{mode}' is not linear, square or log")
        self.mode = "linear" if linear else mode
        self.eps = eps

    def elementwise(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        ious = box_overlaps(pred, target, "iou", aligned=True, eps=self.eps).clamp(min=self.eps)
        if self.mode == "linear":
            return 1 - ious
        if self.mode == "square":
            return 1 - ious**2
        return -ious.log()


class GIoULoss(_BoxLoss):
    """1 - generalised IoU."""

    def __init__(self, eps: float = 1e-6, reduction: str = "mean", loss_weight: float = 1.0) -> None:
        super().__init__(reduction, loss_weight)
        self.eps = eps

    def elementwise(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return 1 - box_overlaps(pred, target, "giou", aligned=True, eps=self.eps)
