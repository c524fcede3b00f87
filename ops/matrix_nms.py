"""Matrix NMS (SOLOv2): every mask's score decays by its overlap with the higher-scoring masks
of its class, all pairs at once, instead of greedy suppression. Pure PyTorch: one matrix product
for the pairwise intersections, the rest element-wise on an N x N matrix (N <= nms_pre); see
docs/ops.md for why it is not compiled."""
from __future__ import annotations

import torch
from torch import Tensor

KERNELS = ("gaussian", "linear")


def _empty(masks: Tensor, labels: Tensor, scores: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    return scores.new_zeros(0), labels.new_zeros(0), masks.new_zeros((0, *masks.shape[-2:])), labels.new_zeros(0)


def _decay(iou: Tensor, same: Tensor, kernel: str, sigma: float) -> Tensor:
    """Per mask j: min over higher-scoring i of f(iou_ij) / f(max iou of i with anything above i)."""
    decay_iou = iou * same
    compensate = decay_iou.max(0).values[:, None]  # row i: how much i itself was suppressed
    if kernel == "gaussian":
        ratio = torch.exp(-sigma * decay_iou ** 2) / torch.exp(-sigma * compensate ** 2)
    else:
        ratio = (1 - decay_iou) / (1 - compensate)
    return ratio.min(0).values


def matrix_nms(masks: Tensor, labels: Tensor, scores: Tensor, mask_area: Tensor | None = None,
               nms_pre: int = -1, max_num: int = -1, kernel: str = "gaussian", sigma: float = 2.0,
               filter_thr: float = -1.0) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Matrix NMS of binary `masks` (N, H, W) with `labels` and `scores` (N,).

    The `nms_pre` best are kept, their scores decayed (`kernel` gaussian exp(-sigma iou^2) or
    linear 1 - iou, IoU only within a class), those under `filter_thr` dropped (when > 0), the
    rest sorted and cut at `max_num`. -> (scores, labels, masks, indices into the input)."""
    if kernel not in KERNELS:
        raise ValueError(f"matrix_nms: kernel must be one of {', '.join(KERNELS)}, got {kernel!r}")
    if len(labels) == 0:
        return _empty(masks, labels, scores)
    area = masks.sum((1, 2)).float() if mask_area is None else mask_area
    scores, order = torch.sort(scores, descending=True)
    if 0 < nms_pre < len(order):
        order, scores = order[:nms_pre], scores[:nms_pre]
        inter = _intersections(masks[order])
    else:  # every mask takes part: intersect in input order, permute the small N x N matrix
        inter = _intersections(masks)[order][:, order]
    area, labels = area[order], labels[order]
    iou = (inter / (area[None, :] + area[:, None] - inter)).triu(diagonal=1)
    same = (labels[None, :] == labels[:, None]).triu(diagonal=1)
    scores = scores * _decay(iou, same, kernel, sigma)
    if filter_thr > 0:
        keep = scores >= filter_thr
        if not keep.any():
            return _empty(masks, labels, scores)
        order, scores, labels = order[keep], scores[keep], labels[keep]
    scores, rank = torch.sort(scores, descending=True)
    if 0 < max_num < len(rank):
        rank, scores = rank[:max_num], scores[:max_num]
    return scores, labels[rank], masks[order[rank]], order[rank]


def _intersections(masks: Tensor) -> Tensor:
    """(N, N) pixel counts of pairwise intersections: one matrix product of the flattened masks."""
    flat = masks.reshape(len(masks), -1).float()
    return flat @ flat.t()
