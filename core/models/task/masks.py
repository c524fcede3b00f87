"""Mask targets for RoIs and pasting RoI mask predictions back into the image."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from det.ops import roi_align


def mask_targets(gt_masks: torch.Tensor, boxes: torch.Tensor, gt_inds: torch.Tensor, size: int,
                 binarize: bool = True) -> torch.Tensor:
    """Crop each box's assigned gt mask and resize it to size x size (RoIAlign with aligned
    sampling, MMDetection's `BitmapMasks.crop_and_resize`); -> (K, size, size) float {0, 1}.

    gt_masks: (G, H, W) bool/uint8 in the same coordinates as `boxes` (K, 4); gt_inds: (K,).
    """
    if boxes.size(0) == 0:
        return boxes.new_zeros((0, size, size))
    masks = gt_masks.to(device=boxes.device, dtype=torch.float32)[:, None]
    rois = torch.cat([gt_inds.to(boxes.dtype)[:, None], boxes.float()], dim=1)
    out = roi_align(masks, rois, (size, size), 1.0, 0, True).squeeze(1)
    return (out >= 0.5).float() if binarize else out


def paste_masks(probs: torch.Tensor, boxes: torch.Tensor, height: int, width: int,
                threshold: float = 0.5) -> torch.Tensor:
    """(N, M, M) mask probabilities inside `boxes` (N, 4, image coordinates) -> (N, H, W)
    bool masks: each image pixel centre is bilinearly sampled from the box's M x M grid
    (grid_sample, align_corners=False), only over the box's integer extent plus one pixel;
    probabilities >= threshold are foreground; a negative threshold returns the float
    probabilities instead."""
    n = probs.size(0)
    soft = threshold < 0
    out = torch.zeros((n, height, width), dtype=torch.float32 if soft else torch.bool, device=probs.device)
    for i in range(n):
        x0, y0, x1, y1 = (float(v) for v in boxes[i])
        xa, ya = max(int(math.floor(x0)) - 1, 0), max(int(math.floor(y0)) - 1, 0)
        xb, yb = min(int(math.ceil(x1)) + 1, width), min(int(math.ceil(y1)) + 1, height)
        if xb <= xa or yb <= ya:
            continue
        bw, bh = max(x1 - x0, 1e-6), max(y1 - y0, 1e-6)
        gx = (torch.arange(xa, xb, device=probs.device, dtype=torch.float32) + 0.5 - x0) / bw * 2 - 1
        gy = (torch.arange(ya, yb, device=probs.device, dtype=torch.float32) + 0.5 - y0) / bh * 2 - 1
        grid = torch.stack([gx[None, :].expand(gy.numel(), -1), gy[:, None].expand(-1, gx.numel())], dim=-1)
        patch = F.grid_sample(probs[i][None, None].float(), grid[None], align_corners=False)[0, 0]
        out[i, ya:yb, xa:xb] = patch if soft else patch >= threshold
    return out
