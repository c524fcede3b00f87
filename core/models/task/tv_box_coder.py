"""Box decoding exactly as torchvision's detection models do it (for converted weights)."""
from __future__ import annotations

import math

import torch

from det.core.models.task.coders import DeltaXYWHBBoxCoder, _clip


class TorchvisionDeltaXYWHBBoxCoder(DeltaXYWHBBoxCoder):
    """`DeltaXYWHBBoxCoder` whose decoding clamps dw, dh only from above (at
    |log(wh_ratio_clip)|, torchvision's log(1000 / 16)), as torchvision's `BoxCoder` does;
    MMDetection's clamps from below too, which changes boxes with very negative dw, dh."""

    def decode(self, priors: torch.Tensor, deltas: torch.Tensor,
               max_shape: tuple[int, int] | None = None) -> torch.Tensor:
        deltas = deltas * deltas.new_tensor(self.stds) + deltas.new_tensor(self.means)
        pxy = (priors[..., :2] + priors[..., 2:]) * 0.5
        pwh = priors[..., 2:] - priors[..., :2]
        gxy = pxy + pwh * deltas[..., :2]
        gwh = pwh * deltas[..., 2:].clamp(max=abs(math.log(self.wh_ratio_clip))).exp()
        boxes = torch.cat([gxy - gwh * 0.5, gxy + gwh * 0.5], dim=-1)
        return _clip(boxes, max_shape) if self.clip_border else boxes
