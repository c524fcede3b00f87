"""RoI feature extraction from one pyramid level per RoI (RoIAlign from det.ops)."""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from det.core.config.build import check_keys, config_path
from det.core.errors import ConfigError
from det.ops import roi_align


class SingleRoIExtractor(nn.Module):
    """Pools each RoI from the level of its scale: level = floor(log2(sqrt(w * h) /
    finest_scale + 1e-6)) clipped to the levels given by `featmap_strides` (MMDetection's
    mapping; with finest_scale 56 it equals torchvision's canonical 224-px-at-level-4 rule)."""

    def __init__(self, roi_layer: dict, out_channels: int, featmap_strides: Sequence[int],
                 finest_scale: int = 56) -> None:
        super().__init__()
        layer = dict(roi_layer)
        kind = layer.pop("type", "RoIAlign")
        if kind != "RoIAlign":
            raise ConfigError(f"{config_path('roi_layer', 'type')}: only RoIAlign is supported, got '{kind}'")
        allowed = {"output_size", "sampling_ratio", "aligned", "pool_mode"}
        check_keys(layer, allowed, "roi_layer")
        if layer.get("pool_mode", "avg") != "avg":
            raise ConfigError(f"{config_path('roi_layer', 'pool_mode')}: only 'avg' is supported")
        size = layer.get("output_size", 7)
        self.output_size = (int(size), int(size)) if not isinstance(size, (list, tuple)) else tuple(int(s) for s in size)
        self.sampling_ratio = int(layer.get("sampling_ratio", 0))
        self.aligned = bool(layer.get("aligned", True))
        self.out_channels = out_channels
        self.featmap_strides = [int(s) for s in featmap_strides]
        self.finest_scale = finest_scale

    @property
    def num_inputs(self) -> int:
        return len(self.featmap_strides)

    def map_roi_levels(self, rois: torch.Tensor) -> torch.Tensor:
        scale = torch.sqrt((rois[:, 3] - rois[:, 1]) * (rois[:, 4] - rois[:, 2]))
        levels = torch.floor(torch.log2(scale / self.finest_scale + 1e-6))
        return levels.clamp(min=0, max=self.num_inputs - 1).long()

    def forward(self, feats: Sequence[torch.Tensor], rois: torch.Tensor) -> torch.Tensor:
        """rois (K, 5) [batch index, x1, y1, x2, y2] -> (K, C, *output_size)."""
        out = feats[0].new_zeros((rois.size(0), self.out_channels, *self.output_size))
        if rois.size(0) == 0:
            return out
        if self.num_inputs == 1:
            return roi_align(feats[0], rois, self.output_size, 1.0 / self.featmap_strides[0],
                             self.sampling_ratio, self.aligned)
        levels = self.map_roi_levels(rois)
        for i in range(self.num_inputs):
            idx = (levels == i).nonzero().squeeze(1)
            if idx.numel():
                out[idx] = roi_align(feats[i], rois[idx], self.output_size, 1.0 / self.featmap_strides[i],
                                     self.sampling_ratio, self.aligned).to(out.dtype)
            else:
                # keeps every level's parameters in the graph (DDP) at zero cost
                out = out + feats[i].sum() * 0.0
        return out


def boxes_to_rois(boxes: Sequence[torch.Tensor]) -> torch.Tensor:
    """Per-image (K_i, 4) boxes -> (sum K_i, 5) rois with the batch index first."""
    rois = [torch.cat([b.new_full((b.size(0), 1), float(i)), b[:, :4]], dim=1) for i, b in enumerate(boxes)]
    return torch.cat(rois, dim=0) if rois else torch.zeros((0, 5))
