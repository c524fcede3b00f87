"""Priors on feature-map grids: anchor boxes (RetinaNet) and points (FCOS, RTMDet).

Order of the flattened priors of a level: row-major over (y, x), and for anchors the base
anchors of one location consecutive (ratio-major, scale-minor) - the order of a head's output
permuted to (H, W, A, C).
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from det.core.config.build import config_path
from det.core.errors import ConfigError


def _pairs(strides: Sequence) -> list[tuple[int, int]]:
    return [(int(s), int(s)) if not isinstance(s, (list, tuple)) else (int(s[0]), int(s[1])) for s in strides]


def _meshgrid(xs: torch.Tensor, ys: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    yy, xx = torch.meshgrid(ys, xs, indexing="ij")
    return xx.reshape(-1), yy.reshape(-1)


def _valid_flags(featmap_size: tuple[int, int], valid_size: tuple[int, int], num_base: int,
                 device: torch.device | str) -> torch.Tensor:
    feat_h, feat_w = featmap_size
    valid_h, valid_w = valid_size
    vx = torch.zeros(feat_w, dtype=torch.bool, device=device)
    vy = torch.zeros(feat_h, dtype=torch.bool, device=device)
    vx[:valid_w] = True
    vy[:valid_h] = True
    xx, yy = _meshgrid(vx, vy)
    valid = xx & yy
    return valid[:, None].expand(valid.size(0), num_base).reshape(-1)


class _LevelGrid:
    """What the prior generators share: per-level strides and which priors lie on real pixels."""

    strides: list[tuple[int, int]]
    num_base_priors: list[int]

    @property
    def num_levels(self) -> int:
        return len(self.strides)

    def valid_flags(self, featmap_sizes: Sequence[tuple[int, int]], pad_shape: tuple[int, int],
                    device: torch.device | str = "cpu") -> list[torch.Tensor]:
        flags = []
        for i, (feat_h, feat_w) in enumerate(featmap_sizes):
            sw, sh = self.strides[i]
            valid = (min(math.ceil(pad_shape[0] / sh), feat_h), min(math.ceil(pad_shape[1] / sw), feat_w))
            flags.append(_valid_flags((feat_h, feat_w), valid, self.num_base_priors[i], device))
        return flags


class AnchorGenerator(_LevelGrid):
    """Anchors per level from `strides`, `ratios` (h/w) and either `scales` or
    `octave_base_scale` x 2**(i / scales_per_octave); base size = stride unless `base_sizes`."""

    def __init__(self, strides: Sequence, ratios: Sequence[float] = (0.5, 1.0, 2.0),
                 scales: Sequence[float] | None = None, base_sizes: Sequence[int] | None = None,
                 scale_major: bool = True, octave_base_scale: float | None = None,
                 scales_per_octave: int | None = None, centers: Sequence | None = None,
                 center_offset: float = 0.0) -> None:
        self.strides = _pairs(strides)
        self.base_sizes = [min(s) for s in self.strides] if base_sizes is None else list(base_sizes)
        if len(self.base_sizes) != len(self.strides):
            raise ConfigError(f"{config_path('base_sizes')}: needs one entry per stride ({len(self.strides)})")
        if (scales is None) == (octave_base_scale is None):
            raise ConfigError(f"{config_path('scales')}: give either scales or octave_base_scale + scales_per_octave")
        if scales is not None:
            self.scales = torch.tensor(scales, dtype=torch.float32)
        else:
            if scales_per_octave is None:
                raise ConfigError(f"{config_path('scales_per_octave')}: required with octave_base_scale")
            octave = [2 ** (i / scales_per_octave) for i in range(scales_per_octave)]
            self.scales = torch.tensor(octave, dtype=torch.float32) * octave_base_scale
        self.ratios = torch.tensor(ratios, dtype=torch.float32)
        self.scale_major = scale_major
        self.centers = centers
        self.center_offset = center_offset
        self.base_anchors = [self._base_anchors(size, i) for i, size in enumerate(self.base_sizes)]

    @property
    def num_base_priors(self) -> list[int]:
        return [int(b.size(0)) for b in self.base_anchors]

    def _base_anchors(self, base_size: int, level: int) -> torch.Tensor:
        w = h = float(base_size)
        if self.centers is None:
            cx, cy = self.center_offset * w, self.center_offset * h
        else:
            cx, cy = self.centers[level]
        h_ratios = torch.sqrt(self.ratios)
        w_ratios = 1 / h_ratios
        if self.scale_major:
            ws = (w * w_ratios[:, None] * self.scales[None, :]).reshape(-1)
            hs = (h * h_ratios[:, None] * self.scales[None, :]).reshape(-1)
        else:
            ws = (w * self.scales[:, None] * w_ratios[None, :]).reshape(-1)
            hs = (h * self.scales[:, None] * h_ratios[None, :]).reshape(-1)
        return torch.stack([cx - 0.5 * ws, cy - 0.5 * hs, cx + 0.5 * ws, cy + 0.5 * hs], dim=-1)

    def single_level_grid_priors(self, featmap_size: tuple[int, int], level: int,
                                 dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu") -> torch.Tensor:
        base = self.base_anchors[level].to(device=device, dtype=dtype)
        feat_h, feat_w = featmap_size
        sw, sh = self.strides[level]
        xs = torch.arange(0, feat_w, device=device, dtype=dtype) * sw
        ys = torch.arange(0, feat_h, device=device, dtype=dtype) * sh
        xx, yy = _meshgrid(xs, ys)
        shifts = torch.stack([xx, yy, xx, yy], dim=-1)
        return (base[None, :, :] + shifts[:, None, :]).reshape(-1, 4)

    def grid_priors(self, featmap_sizes: Sequence[tuple[int, int]], dtype: torch.dtype = torch.float32,
                    device: torch.device | str = "cpu") -> list[torch.Tensor]:
        return [self.single_level_grid_priors(tuple(s), i, dtype, device) for i, s in enumerate(featmap_sizes)]



class MlvlPointGenerator(_LevelGrid):
    """One point per feature-map cell at ((x + offset) * stride, (y + offset) * stride);
    with `with_stride` each prior is (x, y, stride_w, stride_h)."""

    def __init__(self, strides: Sequence, offset: float = 0.5) -> None:
        self.strides = _pairs(strides)
        self.offset = offset

    @property
    def num_base_priors(self) -> list[int]:
        return [1] * len(self.strides)

    def single_level_grid_priors(self, featmap_size: tuple[int, int], level: int,
                                 dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu",
                                 with_stride: bool = False) -> torch.Tensor:
        feat_h, feat_w = featmap_size
        sw, sh = self.strides[level]
        xs = (torch.arange(0, feat_w, device=device, dtype=torch.float32) + self.offset) * sw
        ys = (torch.arange(0, feat_h, device=device, dtype=torch.float32) + self.offset) * sh
        xx, yy = _meshgrid(xs, ys)
        if with_stride:
            points = torch.stack([xx, yy, torch.full_like(xx, sw), torch.full_like(yy, sh)], dim=-1)
        else:
            points = torch.stack([xx, yy], dim=-1)
        return points.to(dtype)

    def grid_priors(self, featmap_sizes: Sequence[tuple[int, int]], dtype: torch.dtype = torch.float32,
                    device: torch.device | str = "cpu", with_stride: bool = False) -> list[torch.Tensor]:
        return [self.single_level_grid_priors(tuple(s), i, dtype, device, with_stride)
                for i, s in enumerate(featmap_sizes)]



PRIOR_GENERATORS = {"AnchorGenerator": AnchorGenerator, "MlvlPointGenerator": MlvlPointGenerator}
