"""Sine positional encoding of DETR (2-D, y features then x features)."""
from __future__ import annotations

import math

import torch
from torch import nn


class SinePositionalEncoding(nn.Module):
    """(B, 2 * num_feats, H, W) encoding of the unpadded positions of `mask` (True = padding);
    without a mask every position counts. `normalize` scales cumulative positions to [0, scale]."""

    def __init__(self, num_feats: int, temperature: int = 10000, normalize: bool = False, scale: float = 2 * math.pi,
                 eps: float = 1e-6, offset: float = 0.0) -> None:
        super().__init__()
        self.num_feats, self.temperature, self.normalize = num_feats, temperature, normalize
        self.scale, self.eps, self.offset = scale, eps, offset

    def forward(self, mask: torch.Tensor | None, shape: tuple[int, int, int] | None = None,
                device: torch.device | None = None) -> torch.Tensor:
        if mask is not None:
            not_mask = (~mask).to(torch.int)
            y = not_mask.cumsum(1, dtype=torch.float32)
            x = not_mask.cumsum(2, dtype=torch.float32)
        else:
            b, h, w = shape
            x = torch.arange(1, w + 1, dtype=torch.float32, device=device).view(1, 1, -1).expand(b, h, w)
            y = torch.arange(1, h + 1, dtype=torch.float32, device=device).view(1, -1, 1).expand(b, h, w)
        if self.normalize:
            y = (y + self.offset) / (y[:, -1:, :] + self.eps) * self.scale
            x = (x + self.offset) / (x[:, :, -1:] + self.eps) * self.scale
        dim_t = torch.arange(self.num_feats, dtype=torch.float32, device=x.device)
        dim_t = self.temperature ** (2 * (dim_t // 2) / self.num_feats)
        return torch.cat([_interleave(y[..., None] / dim_t), _interleave(x[..., None] / dim_t)], 3).permute(0, 3, 1, 2)


def _interleave(pos: torch.Tensor) -> torch.Tensor:
    """sin of even and cos of odd features, interleaved: (B, H, W, F) -> (B, H, W, F)."""
    return torch.stack((pos[..., 0::2].sin(), pos[..., 1::2].cos()), dim=4).flatten(3)
