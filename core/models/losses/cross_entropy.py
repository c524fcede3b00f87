"""Cross-entropy: softmax over classes, or binary with logits (`use_sigmoid`, FCOS centerness)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from det.core.models.losses.utils import check_reduction, weight_reduce_loss


class CrossEntropyLoss(nn.Module):
    def __init__(self, use_sigmoid: bool = False, reduction: str = "mean", loss_weight: float = 1.0,
                 ignore_index: int | None = None, avg_non_ignore: bool = False) -> None:
        super().__init__()
        self.use_sigmoid = use_sigmoid
        # softmax only: targets equal to ignore_index add 0; the mean counts them unless avg_non_ignore
        self.ignore_index = -100 if ignore_index is None else int(ignore_index)
        self.avg_non_ignore = avg_non_ignore
        self.reduction = check_reduction(reduction)
        self.loss_weight = loss_weight

    def forward(self, pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None,
                avg_factor: float | None = None, reduction_override: str | None = None) -> torch.Tensor:
        reduction = reduction_override or self.reduction
        if self.use_sigmoid:
            if pred.dim() == target.dim() + 1 and pred.size(-1) > 1:
                target = F.one_hot(target.long(), pred.size(-1) + 1)[..., :pred.size(-1)]
            loss = F.binary_cross_entropy_with_logits(pred.float(), target.float(), reduction="none")
            if weight is not None and weight.dim() < loss.dim():
                weight = weight[:, None]
        else:
            loss = F.cross_entropy(pred.float(), target.long(), reduction="none", ignore_index=self.ignore_index)
            if avg_factor is None and self.avg_non_ignore and reduction == "mean":
                avg_factor = float((target != self.ignore_index).sum())
        return self.loss_weight * weight_reduce_loss(loss, weight, reduction, avg_factor)
