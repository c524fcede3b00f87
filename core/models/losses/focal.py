"""Sigmoid focal loss (RetinaNet, FCOS) and Quality Focal Loss (GFL, RTMDet)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from det.core.config.build import config_path
from det.core.errors import ConfigError
from det.core.models._ops import sigmoid_focal_loss
from det.core.models.losses.utils import check_reduction, weight_reduce_loss


def _require_sigmoid(use_sigmoid: bool, name: str) -> None:
    if not use_sigmoid:
        raise ConfigError(f"{config_path('use_sigmoid')}: {name} supports only use_sigmoid: true")


class FocalLoss(nn.Module):
    """Focal loss on sigmoid logits (N, C) with integer targets (N,) where C means background,
    computed by det.ops.sigmoid_focal_loss."""

    def __init__(self, use_sigmoid: bool = True, gamma: float = 2.0, alpha: float = 0.25,
                 reduction: str = "mean", loss_weight: float = 1.0) -> None:
        super().__init__()
        _require_sigmoid(use_sigmoid, "FocalLoss")
        self.gamma = gamma
        self.alpha = alpha
        self.reduction = check_reduction(reduction)
        self.loss_weight = loss_weight

    def forward(self, pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None,
                avg_factor: float | None = None, reduction_override: str | None = None) -> torch.Tensor:
        reduction = reduction_override or self.reduction
        num_classes = pred.size(1)
        if target.dim() == 1:
            target = F.one_hot(target.long(), num_classes + 1)[:, :num_classes]
        pred = pred.float()
        if weight is not None:
            weight = weight.to(pred.dtype)
        loss = sigmoid_focal_loss(pred, target.to(pred.dtype), self.alpha, self.gamma, "none", weight)
        return self.loss_weight * weight_reduce_loss(loss, None, reduction, avg_factor)


def quality_focal_loss(pred: torch.Tensor, labels: torch.Tensor, scores: torch.Tensor,
                       beta: float = 2.0) -> torch.Tensor:
    """Per-sample QFL (N,): negatives target 0, the positive class of a positive targets its
    quality score; each term is BCE scaled by |target - sigmoid(pred)| ** beta."""
    pred = pred.float()
    sig = pred.sigmoid()
    loss = F.binary_cross_entropy_with_logits(pred, torch.zeros_like(pred), reduction="none") * sig.pow(beta)
    num_classes = pred.size(1)
    pos = ((labels >= 0) & (labels < num_classes)).nonzero().squeeze(1)
    if pos.numel():
        pos_label = labels[pos].long()
        p = pred[pos, pos_label]
        s = scores[pos].to(p.dtype)
        loss = loss.clone()
        loss[pos, pos_label] = F.binary_cross_entropy_with_logits(p, s, reduction="none") * \
            (s - sig[pos, pos_label]).abs().pow(beta)
    return loss.sum(dim=1)


class QualityFocalLoss(nn.Module):
    """Quality Focal Loss; `target` is (labels (N,), quality scores (N,))."""

    def __init__(self, use_sigmoid: bool = True, beta: float = 2.0, reduction: str = "mean",
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        _require_sigmoid(use_sigmoid, "QualityFocalLoss")
        self.beta = beta
        self.reduction = check_reduction(reduction)
        self.loss_weight = loss_weight

    def forward(self, pred: torch.Tensor, target: tuple[torch.Tensor, torch.Tensor],
                weight: torch.Tensor | None = None, avg_factor: float | None = None,
                reduction_override: str | None = None) -> torch.Tensor:
        reduction = reduction_override or self.reduction
        loss = quality_focal_loss(pred, target[0], target[1], self.beta)
        return self.loss_weight * weight_reduce_loss(loss, weight, reduction, avg_factor)
