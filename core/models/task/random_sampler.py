"""Random sampling of positives and negatives (two-stage detectors: RPN and RoI heads)."""
from __future__ import annotations

import torch

from det.core.models.task.assigners import AssignResult
from det.core.models.task.samplers import SamplingResult


def _random_choice(inds: torch.Tensor, num: int) -> torch.Tensor:
    if inds.numel() <= num:
        return inds
    perm = torch.randperm(inds.numel(), device=inds.device)[:num]
    return inds[perm]


class RandomSampler:
    """Up to `num` samples per image: at most `num * pos_fraction` positives drawn uniformly,
    the rest negatives (at most `neg_pos_ub` x the positives when >= 0, at least one).
    `add_gt_as_proposals` is read by the RoI heads, which prepend the gt boxes to the proposals
    before assignment (MMDetection semantics)."""

    def __init__(self, num: int, pos_fraction: float, neg_pos_ub: int = -1, add_gt_as_proposals: bool = True) -> None:
        self.num = int(num)
        self.pos_fraction = float(pos_fraction)
        self.neg_pos_ub = int(neg_pos_ub)
        self.add_gt_as_proposals = bool(add_gt_as_proposals)

    def sample(self, assign: AssignResult, gt_bboxes: torch.Tensor, gt_labels: torch.Tensor) -> SamplingResult:
        pos_all = torch.nonzero(assign.gt_inds > 0, as_tuple=False).squeeze(-1)
        neg_all = torch.nonzero(assign.gt_inds == 0, as_tuple=False).squeeze(-1)
        pos_inds = _random_choice(pos_all, int(self.num * self.pos_fraction))
        num_neg = self.num - pos_inds.numel()
        if self.neg_pos_ub >= 0:
            num_neg = min(num_neg, int(self.neg_pos_ub * max(1, pos_inds.numel())))
        neg_inds = _random_choice(neg_all, num_neg)
        gt_idx = assign.gt_inds[pos_inds] - 1
        if gt_bboxes.numel() == 0:
            pos_boxes, pos_labels = gt_bboxes.new_zeros((0, 4)), gt_labels.new_zeros((0,))
        else:
            pos_boxes, pos_labels = gt_bboxes.reshape(-1, 4)[gt_idx], gt_labels[gt_idx]
        return SamplingResult(pos_inds, neg_inds, gt_idx, pos_boxes, pos_labels)
