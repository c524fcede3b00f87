"""Box coders: regression targets from (prior, box) pairs and back."""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch


def _clip(boxes: torch.Tensor, max_shape: tuple[int, int] | None) -> torch.Tensor:
    if max_shape is None:
        return boxes
    h, w = max_shape[0], max_shape[1]
    x = boxes[..., 0::2].clamp(min=0, max=w)
    y = boxes[..., 1::2].clamp(min=0, max=h)
    return torch.stack([x[..., 0], y[..., 0], x[..., 1], y[..., 1]], dim=-1)


class DeltaXYWHBBoxCoder:
    """(dx, dy, dw, dh) = ((gx - px) / pw, (gy - py) / ph, log(gw / pw), log(gh / ph)),
    normalised by `target_means` / `target_stds`. Decoding clamps dw, dh to
    |log(wh_ratio_clip)| and clips boxes to the image when `clip_border`."""

    encode_size = 4

    def __init__(self, target_means: Sequence[float] = (0.0, 0.0, 0.0, 0.0),
                 target_stds: Sequence[float] = (1.0, 1.0, 1.0, 1.0), clip_border: bool = True,
                 add_ctr_clamp: bool = False, ctr_clamp: int = 32, wh_ratio_clip: float = 16 / 1000) -> None:
        self.means = tuple(float(m) for m in target_means)
        self.stds = tuple(float(s) for s in target_stds)
        self.clip_border = clip_border
        self.add_ctr_clamp = add_ctr_clamp
        self.ctr_clamp = ctr_clamp
        self.wh_ratio_clip = wh_ratio_clip

    def encode(self, priors: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
        priors, gt = priors.float(), gt.float()
        pxy = (priors[..., :2] + priors[..., 2:]) * 0.5
        pwh = priors[..., 2:] - priors[..., :2]
        gxy = (gt[..., :2] + gt[..., 2:]) * 0.5
        gwh = gt[..., 2:] - gt[..., :2]
        deltas = torch.cat([(gxy - pxy) / pwh, torch.log(gwh / pwh)], dim=-1)
        return (deltas - deltas.new_tensor(self.means)) / deltas.new_tensor(self.stds)

    def decode(self, priors: torch.Tensor, deltas: torch.Tensor,
               max_shape: tuple[int, int] | None = None) -> torch.Tensor:
        deltas = deltas * deltas.new_tensor(self.stds) + deltas.new_tensor(self.means)
        pxy = (priors[..., :2] + priors[..., 2:]) * 0.5
        pwh = priors[..., 2:] - priors[..., :2]
        dxy_wh = pwh * deltas[..., :2]
        max_ratio = abs(math.log(self.wh_ratio_clip))
        if self.add_ctr_clamp:
            dxy_wh = dxy_wh.clamp(-self.ctr_clamp, self.ctr_clamp)
            dwh = deltas[..., 2:].clamp(max=max_ratio)
        else:
            dwh = deltas[..., 2:].clamp(-max_ratio, max_ratio)
        gxy = pxy + dxy_wh
        gwh = pwh * dwh.exp()
        boxes = torch.cat([gxy - gwh * 0.5, gxy + gwh * 0.5], dim=-1)
        return _clip(boxes, max_shape) if self.clip_border else boxes


class DistancePointBBoxCoder:
    """Distances (left, top, right, bottom) from a point to the sides of a box."""

    encode_size = 4

    def __init__(self, clip_border: bool = True) -> None:
        self.clip_border = clip_border

    def encode(self, points: torch.Tensor, gt: torch.Tensor, max_dis: float | None = None,
               eps: float = 0.1) -> torch.Tensor:
        points = points[..., :2]
        dist = torch.cat([points - gt[..., :2], gt[..., 2:] - points], dim=-1)
        if max_dis is not None:
            dist = dist.clamp(min=0, max=max_dis - eps)
        return dist

    def decode(self, points: torch.Tensor, distance: torch.Tensor,
               max_shape: tuple[int, int] | None = None) -> torch.Tensor:
        points = points[..., :2]
        boxes = torch.cat([points - distance[..., :2], points + distance[..., 2:]], dim=-1)
        return _clip(boxes, max_shape) if self.clip_border else boxes


CODERS = {"DeltaXYWHBBoxCoder": DeltaXYWHBBoxCoder, "DistancePointBBoxCoder": DistancePointBBoxCoder}
