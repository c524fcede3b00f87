"""Anchors exactly as torchvision's detection models make them (for converted weights)."""
from __future__ import annotations

import torch

from det.core.models.task.prior_generators import AnchorGenerator


class TorchvisionAnchorGenerator(AnchorGenerator):
    """`AnchorGenerator` whose base anchors are rounded to integers, as torchvision's
    `AnchorGenerator` rounds them (e.g. the 0.5-ratio anchor of size 32 is 46 x 22, not
    45.25 x 22.63); everything else (order, shifts) is the same."""

    def _base_anchors(self, base_size: int, level: int) -> torch.Tensor:
        return super()._base_anchors(base_size, level).round()
