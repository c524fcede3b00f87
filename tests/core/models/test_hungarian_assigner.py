"""HungarianAssigner and its match costs: costs against per-pair formulas and torchvision's
GIoU, the matching against brute force over permutations, and images without objects."""
from __future__ import annotations

import itertools
import math

import pytest
import torch
import torchvision

from det.core.errors import ConfigError
from det.core.models.task import ASSIGNERS
from det.core.models.task.match_costs import BBoxL1Cost, ClassificationCost, FocalLossCost, IoUCost

DETR_COSTS = [{"type": "ClassificationCost", "weight": 1.0}, {"type": "BBoxL1Cost", "weight": 5.0, "box_format": "xywh"},
              {"type": "IoUCost", "iou_mode": "giou", "weight": 2.0}]
DINO_COSTS = [{"type": "FocalLossCost", "weight": 2.0}, {"type": "BBoxL1Cost", "weight": 5.0, "box_format": "xywh"},
              {"type": "IoUCost", "iou_mode": "giou", "weight": 2.0}]


def random_boxes(n: int, g: torch.Generator, size: float = 64.0) -> torch.Tensor:
    xy = torch.rand(n, 2, generator=g) * size * 0.7
    wh = 2 + torch.rand(n, 2, generator=g) * size * 0.3
    return torch.cat([xy, xy + wh], 1)


def test_costs_match_per_pair_formulas():
    g = torch.Generator().manual_seed(0)
    logits, boxes = torch.randn(4, 3, generator=g), random_boxes(4, g)
    labels, gt = torch.tensor([2, 0]), random_boxes(2, g)
    shape = (48, 64)
    focal = FocalLossCost(weight=2.0)(logits, boxes, labels, gt, shape)
    cls = ClassificationCost(weight=1.5)(logits, boxes, labels, gt, shape)
    l1 = BBoxL1Cost(weight=5.0)(logits, boxes, labels, gt, shape)
    for q, k in itertools.product(range(4), range(2)):
        p = 1 / (1 + math.exp(-float(logits[q, labels[k]])))
        want = -math.log(p + 1e-12) * 0.25 * (1 - p) ** 2 + math.log(1 - p + 1e-12) * 0.75 * p**2
        assert float(focal[q, k]) == pytest.approx(2.0 * want, rel=1e-5)
        assert float(cls[q, k]) == pytest.approx(-1.5 * float(logits[q].softmax(0)[labels[k]]), rel=1e-6)
        scale = torch.tensor([64.0, 48.0, 64.0, 48.0])
        assert float(l1[q, k]) == pytest.approx(5.0 * float(((boxes[q] - gt[k]) / scale).abs().sum()), rel=1e-5)
    giou = IoUCost(weight=2.0)(logits, boxes, labels, gt, shape)
    torch.testing.assert_close(giou, -2.0 * torchvision.ops.generalized_box_iou(boxes, gt), atol=1e-6, rtol=0)


@pytest.mark.parametrize("num_gts", [1, 3, 5, 7])
def test_matching_is_the_minimum_over_permutations(num_gts):
    g = torch.Generator().manual_seed(num_gts)
    assigner = ASSIGNERS["HungarianAssigner"](DINO_COSTS)
    logits, boxes = torch.randn(6, 4, generator=g), random_boxes(6, g)
    labels, gt = torch.randint(0, 4, (num_gts,), generator=g), random_boxes(num_gts, g)
    result = assigner.assign(logits, boxes, labels, gt, (64, 64))
    cost = assigner.cost(logits, boxes, labels, gt, (64, 64))
    matched = (result.gt_inds > 0).nonzero().squeeze(1)
    assert len(matched) == min(6, num_gts)
    assert torch.equal(result.labels[matched], labels[result.gt_inds[matched] - 1])
    got = float(cost[matched, result.gt_inds[matched] - 1].sum())
    if num_gts <= 6:
        best = min(sum(float(cost[q, k]) for k, q in enumerate(p)) for p in itertools.permutations(range(6), num_gts))
    else:
        best = min(sum(float(cost[q, k]) for q, k in enumerate(p)) for p in itertools.permutations(range(num_gts), 6))
    assert got == pytest.approx(best, rel=1e-6)
    assert (result.gt_inds >= 0).all() and (result.labels[result.gt_inds == 0] == -1).all()


def test_image_without_objects_is_all_background():
    assigner = ASSIGNERS["HungarianAssigner"](DETR_COSTS)
    result = assigner.assign(torch.randn(5, 3), random_boxes(5, torch.Generator()), torch.zeros(0, dtype=torch.long),
                             torch.zeros(0, 4), (64, 64))
    assert result.num_gts == 0 and torch.equal(result.gt_inds, torch.zeros(5, dtype=torch.long))


def test_unknown_cost_names_its_key():
    with pytest.raises(ConfigError, match=r"match_costs\.1\.type.*BBoxL1Cost"):
        ASSIGNERS["HungarianAssigner"]([{"type": "FocalLossCost"}, {"type": "BBoxL1Costt"}])
