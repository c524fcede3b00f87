"""Dice loss on mask probabilities (V-Net form 1 - 2|p t| / (|p|^2 + |t|^2), or the naive form
with first powers), per instance, then weighted and reduced like every loss."""
from __future__ import annotations

import torch
from torch import nn

from det.core.models.losses.utils import check_reduction, weight_reduce_loss


class DiceLoss(nn.Module):
    def __init__(self, use_sigmoid: bool = True, activate: bool = True, reduction: str = "mean",
                 naive_dice: bool = False, loss_weight: float = 1.0, eps: float = 1e-3) -> None:
        super().__init__()
        self.use_sigmoid, self.activate, self.naive_dice = use_sigmoid, activate, naive_dice
        self.reduction = check_reduction(reduction)
        self.loss_weight, self.eps = loss_weight, eps

    def forward(self, pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None,
                avg_factor: float | None = None, reduction_override: str | None = None) -> torch.Tensor:
        p = pred.float().flatten(1)
        if self.activate:
            p = p.sigmoid() if self.use_sigmoid else p
        t = target.flatten(1).float()
        inter = (p * t).sum(1)
        if self.naive_dice:
            dice = (2 * inter + self.eps) / (p.sum(1) + t.sum(1) + self.eps)
        else:
            dice = 2 * inter / ((p * p).sum(1) + self.eps + (t * t).sum(1) + self.eps)
        return self.loss_weight * weight_reduce_loss(1 - dice, weight, reduction_override or self.reduction,
                                                     avg_factor)
