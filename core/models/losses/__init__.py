"""Losses built from `{type: ..., loss_weight: ...}` (MMDetection names and defaults)."""
from det.core.models.losses.box import GIoULoss, IoULoss, L1Loss, SmoothL1Loss
from det.core.models.losses.cross_entropy import CrossEntropyLoss
from det.core.models.losses.dice import DiceLoss
from det.core.models.losses.focal import FocalLoss, QualityFocalLoss, quality_focal_loss
from det.core.models.losses.utils import weight_reduce_loss

LOSSES = {
    "FocalLoss": FocalLoss, "QualityFocalLoss": QualityFocalLoss, "L1Loss": L1Loss, "SmoothL1Loss": SmoothL1Loss,
    "IoULoss": IoULoss, "GIoULoss": GIoULoss, "CrossEntropyLoss": CrossEntropyLoss,
}
LOSSES["DiceLoss"] = DiceLoss

__all__ = [
    "CrossEntropyLoss", "DiceLoss", "FocalLoss", "GIoULoss", "IoULoss", "L1Loss", "LOSSES", "QualityFocalLoss",
    "SmoothL1Loss", "quality_focal_loss", "weight_reduce_loss",
]
