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
