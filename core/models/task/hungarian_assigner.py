"""One-to-one assignment of queries to ground truth (DETR family): the sum of the match costs,
minimised with scipy's `linear_sum_assignment`."""
from __future__ import annotations

import torch
from scipy.optimize import linear_sum_assignment

from det.core.config.build import build
from det.core.models.task.assigners import AssignResult
from det.core.models.task.match_costs import MATCH_COSTS


class HungarianAssigner:
    """`match_costs`: list of cost configs (ClassificationCost/FocalLossCost, BBoxL1Cost, IoUCost).
    Matched queries get gt index + 1, all others 0 (background); no gt -> all background."""

    def __init__(self, match_costs: list[dict] | dict) -> None:
        cfgs = [match_costs] if isinstance(match_costs, dict) else list(match_costs)
        self.match_costs = [build(c, MATCH_COSTS, f"match_costs.{i}") for i, c in enumerate(cfgs)]

    def cost(self, scores: torch.Tensor, bboxes: torch.Tensor, gt_labels: torch.Tensor, gt_bboxes: torch.Tensor,
             img_shape: tuple[int, int]) -> torch.Tensor:
        """(Q, G) total matching cost."""
        return torch.stack([c(scores, bboxes, gt_labels, gt_bboxes, img_shape) for c in self.match_costs]).sum(0)

    def assign(self, scores: torch.Tensor, bboxes: torch.Tensor, gt_labels: torch.Tensor, gt_bboxes: torch.Tensor,
               img_shape: tuple[int, int]) -> AssignResult:
        num_preds, num_gts, device = scores.size(0), gt_labels.numel(), scores.device
        gt_inds = torch.zeros(num_preds, dtype=torch.long, device=device)
        labels = torch.full((num_preds,), -1, dtype=torch.long, device=device)
        if num_gts and num_preds:
            cost = self.cost(scores.detach(), bboxes.detach(), gt_labels, gt_bboxes, img_shape).cpu()
            rows, cols = linear_sum_assignment(cost.float().numpy())
            rows = torch.from_numpy(rows).to(device)
            cols = torch.from_numpy(cols).to(device)
            gt_inds[rows] = cols + 1
            labels[rows] = gt_labels[cols]
        return AssignResult(num_gts, gt_inds, torch.zeros(num_preds, device=device), labels)
