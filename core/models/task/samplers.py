"""Samplers pick the positives/negatives used by the losses from an assignment."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from det.core.models.task.assigners import AssignResult


@dataclass
class SamplingResult:
    pos_inds: torch.Tensor
    neg_inds: torch.Tensor
    pos_assigned_gt_inds: torch.Tensor
    pos_gt_bboxes: torch.Tensor
    pos_gt_labels: torch.Tensor

    @property
    def num_pos(self) -> int:
        return int(self.pos_inds.numel())

    @property
    def avg_factor(self) -> int:
        """Normaliser for losses averaged over positives (at least 1)."""
        return max(self.num_pos, 1)


class PseudoSampler:
    """Takes every positive and every negative of the assignment (dense heads with focal-type
    losses need no sampling)."""

    def sample(self, assign: AssignResult, gt_bboxes: torch.Tensor, gt_labels: torch.Tensor) -> SamplingResult:
        pos_inds = torch.nonzero(assign.gt_inds > 0, as_tuple=False).squeeze(-1)
        neg_inds = torch.nonzero(assign.gt_inds == 0, as_tuple=False).squeeze(-1)
        gt_idx = assign.gt_inds[pos_inds] - 1
        if gt_bboxes.numel() == 0:
            pos_boxes = gt_bboxes.new_zeros((0, 4))
            pos_labels = gt_labels.new_zeros((0,))
        else:
            pos_boxes = gt_bboxes[gt_idx]
            pos_labels = gt_labels[gt_idx]
        return SamplingResult(pos_inds, neg_inds, gt_idx, pos_boxes, pos_labels)


SAMPLERS = {"PseudoSampler": PseudoSampler}
