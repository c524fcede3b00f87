"""SOLOv2's target assignment, per image and pyramid level: an instance belongs to the levels whose
scale range holds sqrt(box area); on each, the grid cells inside the centre region (the box scaled
by `pos_scale` around the mask's centre of mass, at most the 3 x 3 cells around the centre's cell)
are positives with the instance's label and its mask at the mask-feature resolution. Cells of two
instances on one level: the later instance's label wins, and both masks are kept as targets (so
the positive count is the number of distinct cells, the mask loss runs over every pair)."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import torch


@dataclass
class LevelTargets:
    """One image, one level: class of every cell (G * G,), the positive cells and, for each,
    the index of its instance in `ImageTargets.masks` (duplicates when instances share cells)."""

    labels: torch.Tensor
    cells: torch.Tensor
    gt_idx: torch.Tensor

    @property
    def num_pos(self) -> int:
        return int(self.cells.unique().numel())


@dataclass
class ImageTargets:
    levels: list[LevelTargets]
    masks: torch.Tensor  # (G, h, w) uint8 instance masks at the mask-feature resolution


def center_of_mass(masks: torch.Tensor, eps: float = 1e-6) -> tuple[torch.Tensor, torch.Tensor]:
    """(row, column) centre of each (N, H, W) binary mask in pixel indices."""
    h, w = masks.shape[-2:]
    per_row, per_col = masks.sum(2), masks.sum(1)  # exact integer counts: same sums as pixel by pixel
    norm = per_row.sum(1).float().clamp(min=eps)
    rows = (per_row * torch.arange(h, device=masks.device)).sum(1) / norm
    cols = (per_col * torch.arange(w, device=masks.device)).sum(1) / norm
    return rows, cols


def rescale_masks(masks: torch.Tensor, stride: int, size: tuple[int, int]) -> torch.Tensor:
    """(N, H, W) masks -> (N, *size) uint8: OpenCV's bilinear resize by 1 / stride (the reference
    resizes gt masks with it, and it rounds differently from F.interpolate), zero-padded to size."""
    out = masks.new_zeros((masks.size(0), *size), dtype=torch.uint8)
    h, w = masks.shape[-2:]
    dsize = (int(w / stride + 0.5), int(h / stride + 0.5))
    for i, m in enumerate(masks.to(torch.uint8).cpu().numpy()):
        small = torch.from_numpy(np.ascontiguousarray(cv2.resize(m, dsize, interpolation=cv2.INTER_LINEAR)))
        hh, ww = min(small.shape[0], size[0]), min(small.shape[1], size[1])
        out[i, :hh, :ww] = small[:hh, :ww].to(out.device)
    return out


def _cell(value: torch.Tensor, extent: int, num_grid: int) -> torch.Tensor:
    return torch.div(value / extent, 1.0 / num_grid, rounding_mode="trunc")


def level_targets(boxes: torch.Tensor, labels: torch.Tensor, centers: tuple[torch.Tensor, torch.Tensor],
                  valid: torch.Tensor, gt_ids: torch.Tensor, num_grid: int, padded: tuple[int, int],
                  pos_scale: float, num_classes: int) -> LevelTargets:
    """Targets of one level for the instances `gt_ids` (those in the level's scale range)."""
    device = labels.device
    grid = torch.full((num_grid, num_grid), num_classes, dtype=torch.long, device=device)
    cells: list[int] = []
    owners: list[int] = []
    cy, cx = centers[0][gt_ids], centers[1][gt_ids]
    b = boxes[gt_ids]
    half_w, half_h = 0.5 * (b[:, 2] - b[:, 0]) * pos_scale, 0.5 * (b[:, 3] - b[:, 1]) * pos_scale
    hp, wp = padded
    rows = zip(_cell(cy, hp, num_grid).tolist(), _cell(cx, wp, num_grid).tolist(),
               _cell(cy - half_h, hp, num_grid).tolist(), _cell(cy + half_h, hp, num_grid).tolist(),
               _cell(cx - half_w, wp, num_grid).tolist(), _cell(cx + half_w, wp, num_grid).tolist())
    for g, (ch, cw, t, d, lf, r) in zip(gt_ids.tolist(), rows):
        if not bool(valid[g]):
            continue
        ch, cw = int(ch), int(cw)
        top, down = max(max(0, int(t)), ch - 1), min(min(num_grid - 1, int(d)), ch + 1)
        left, right = max(cw - 1, max(0, int(lf))), min(min(num_grid - 1, int(r)), cw + 1)
        grid[top:down + 1, left:right + 1] = labels[g]
        for i in range(top, down + 1):
            for j in range(left, right + 1):
                cells.append(i * num_grid + j)
                owners.append(g)
    as_long = lambda v: torch.tensor(v, dtype=torch.long, device=device)  # noqa: E731
    return LevelTargets(grid.flatten(), as_long(cells), as_long(owners))


def image_targets(boxes: torch.Tensor, labels: torch.Tensor, masks: torch.Tensor, feat_size: tuple[int, int],
                  mask_stride: int, scale_ranges: Sequence[Sequence[float]], num_grids: Sequence[int],
                  pos_scale: float, num_classes: int) -> ImageTargets:
    """Targets of one image; `masks` (G, H, W) are padded to the network input
    (feat_size * mask_stride)."""
    padded = (feat_size[0] * mask_stride, feat_size[1] * mask_stride)
    full = masks.new_zeros((masks.size(0), *padded), dtype=torch.bool)
    h, w = min(masks.shape[-2], padded[0]), min(masks.shape[-1], padded[1])
    full[:, :h, :w] = masks[:, :h, :w].bool()
    areas = torch.sqrt((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))
    centers = center_of_mass(full)
    valid = full.flatten(1).any(1)
    levels = []
    for (low, high), num_grid in zip(scale_ranges, num_grids):
        gt_ids = ((areas >= low) & (areas <= high)).nonzero().flatten()
        levels.append(level_targets(boxes, labels, centers, valid, gt_ids, num_grid, padded, pos_scale, num_classes))
    return ImageTargets(levels, rescale_masks(full, mask_stride, feat_size))
