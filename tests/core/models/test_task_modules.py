"""Anchors, points, coders, assigners and the sampler against hand-computed values."""
import math

import torch

from det.core.models.task import (
    AnchorGenerator,
    ATSSAssigner,
    DeltaXYWHBBoxCoder,
    DistancePointBBoxCoder,
    DynamicSoftLabelAssigner,
    MaxIoUAssigner,
    MlvlPointGenerator,
    PseudoSampler,
)


def test_anchor_generator_hand_values():
    gen = AnchorGenerator(strides=[8], ratios=[1.0, 4.0], scales=[1.0, 2.0])
    base = gen.base_anchors[0]
    # ratio 1: 8x8 and 16x16 centred on 0; ratio 4 (h/w): w = 8/2 = 4, h = 8*2 = 16 (and x2)
    expected = torch.tensor([[-4.0, -4, 4, 4], [-8, -8, 8, 8], [-2, -8, 2, 8], [-4, -16, 4, 16]])
    torch.testing.assert_close(base, expected)
    grid = gen.grid_priors([(2, 3)])[0]
    assert grid.shape == (2 * 3 * 4, 4)
    # location (y=1, x=2) is the 6th cell; its first anchor is shifted by (16, 8)
    torch.testing.assert_close(grid[5 * 4], torch.tensor([12.0, 4, 20, 12]))


def test_retinanet_octave_scales():
    gen = AnchorGenerator(strides=[8, 16], ratios=[0.5, 1.0, 2.0], octave_base_scale=4, scales_per_octave=3)
    assert gen.num_base_priors == [9, 9]
    sizes = gen.base_anchors[0][3:6]  # ratio 1.0 row: 32 * 2**(i/3)
    widths = sizes[:, 2] - sizes[:, 0]
    torch.testing.assert_close(widths, torch.tensor([32 * 2 ** (i / 3) for i in range(3)]))


def test_valid_flags_follow_pad_shape():
    gen = MlvlPointGenerator([8])
    flags = gen.valid_flags([(4, 4)], (20, 9))[0].view(4, 4)
    # ceil(20/8)=3 valid rows, ceil(9/8)=2 valid columns
    expected = torch.zeros(4, 4, dtype=torch.bool)
    expected[:3, :2] = True
    assert torch.equal(flags, expected)


def test_point_generator_offsets_and_stride():
    gen = MlvlPointGenerator([8, 16], offset=0.5)
    pts = gen.grid_priors([(2, 2), (1, 1)], with_stride=True)
    torch.testing.assert_close(pts[0][:, :2], torch.tensor([[4.0, 4], [12, 4], [4, 12], [12, 12]]))
    torch.testing.assert_close(pts[1], torch.tensor([[8.0, 8, 16, 16]]))
    assert MlvlPointGenerator([8], offset=0).grid_priors([(1, 2)])[0].tolist() == [[0.0, 0.0], [8.0, 0.0]]


def test_delta_coder_round_trip_and_values():
    coder = DeltaXYWHBBoxCoder(target_means=(0.0, 0.0, 0.0, 0.0), target_stds=(0.1, 0.1, 0.2, 0.2))
    priors = torch.tensor([[0.0, 0, 10, 10], [5, 5, 25, 15]])
    gt = torch.tensor([[2.0, 1, 12, 21], [4, 6, 30, 14]])
    deltas = coder.encode(priors, gt)
    # first pair: dx = (7 - 5) / 10 / 0.1 = 2, dw = log(10/10) / 0.2 = 0, dh = log(20/10) / 0.2
    torch.testing.assert_close(deltas[0], torch.tensor([2.0, 6.0, 0.0, math.log(2) / 0.2]))
    torch.testing.assert_close(coder.decode(priors, deltas), gt)
    clipped = coder.decode(priors, deltas, max_shape=(18, 28))
    assert clipped[:, 2].max() <= 28 and clipped[:, 3].max() <= 18


def test_distance_coder_round_trip_and_clamp():
    coder = DistancePointBBoxCoder()
    pts = torch.tensor([[10.0, 10], [20, 5]])
    gt = torch.tensor([[0.0, 4, 30, 12], [15, 0, 22, 9]])
    d = coder.encode(pts, gt)
    torch.testing.assert_close(d, torch.tensor([[10.0, 6, 20, 2], [5, 5, 2, 4]]))
    torch.testing.assert_close(coder.decode(pts, d), gt)
    torch.testing.assert_close(coder.encode(pts, gt, max_dis=8), d.clamp(0, 7.9))


def test_max_iou_assigner_hand_case():
    gts = torch.tensor([[0.0, 0, 10, 10], [20, 20, 30, 30]])
    labels = torch.tensor([3, 7])
    priors = torch.tensor([
        [0.0, 0, 10, 10],    # IoU 1 with gt0 -> pos
        [0, 0, 10, 20],      # IoU 0.5 with gt0 -> pos
        [0, 0, 10, 13],      # IoU 10/13 ~ 0.77 -> pos
        [5, 0, 15, 10],      # IoU 1/3 -> neg
        [100, 100, 110, 110],  # IoU 0 -> neg
        [20, 20, 30, 34],    # IoU 10/14 ~ 0.714 with gt1 -> pos
        [0, 0, 10, 22],      # IoU 10/22 ~ 0.45 -> ignored (between thresholds)
    ])
    res = MaxIoUAssigner(pos_iou_thr=0.5, neg_iou_thr=0.4).assign(priors, gts, labels)
    assert res.gt_inds.tolist() == [1, 1, 1, 0, 0, 2, -1]
    assert res.labels.tolist() == [3, 3, 3, -1, -1, 7, -1]
    # low-quality matching: a gt with no prior above pos_iou_thr takes its best prior
    res = MaxIoUAssigner(0.9, 0.1).assign(priors[3:5], gts[:1], labels[:1])
    assert res.gt_inds.tolist() == [1, 0]


def test_atss_assigner_small_case():
    gen = AnchorGenerator(strides=[8], ratios=[1.0], scales=[2.0])
    priors = gen.grid_priors([(4, 4)])[0]  # 16x16 anchors centred on 0, 8, 16, 24
    gt = torch.tensor([[4.0, 4, 20, 20]])
    res = ATSSAssigner(topk=4).assign(priors, gt, torch.tensor([2]), num_level_priors=[16])
    pos = (res.gt_inds > 0).nonzero().squeeze(1).tolist()
    # the 4 anchors centred nearest (12, 12) are (8,8), (16,8), (8,16), (16,16): equal IoU, all
    # >= mean + std (std 0) and centred inside the gt
    assert sorted(pos) == [5, 6, 9, 10]
    assert set(res.labels[pos].tolist()) == {2}


def test_dynamic_soft_label_assigner_picks_in_box_low_cost_priors():
    gen = MlvlPointGenerator([8], offset=0)
    priors = gen.grid_priors([(4, 4)], with_stride=True)[0]
    gt = torch.tensor([[6.0, 6, 26, 26]])
    # predictions: boxes equal to the gt at points inside it, scores favouring class 1
    pred_boxes = gt.expand(16, 4).clone()
    scores = torch.full((16, 3), -4.0)
    scores[:, 1] = 2.0
    res = DynamicSoftLabelAssigner(topk=13).assign(priors, gt, torch.tensor([1]), pred_scores=scores,
                                                   pred_bboxes=pred_boxes)
    inside = ((priors[:, 0] > 6) & (priors[:, 0] < 26) & (priors[:, 1] > 6) & (priors[:, 1] < 26))
    pos = res.gt_inds > 0
    assert pos.any() and not (pos & ~inside).any()  # only centres inside the box
    # IoU 1 everywhere -> dynamic k = min(13, #priors) summed IoUs clipped by candidates: all 9 inside
    assert int(pos.sum()) == int(inside.sum())
    torch.testing.assert_close(res.max_overlaps[pos], torch.ones(int(pos.sum())))
    assert set(res.labels[pos].tolist()) == {1}


def test_dynamic_soft_label_one_prior_one_gt():
    """Two gts competing for one prior: it goes to the lower-cost gt."""
    priors = torch.tensor([[10.0, 10, 8, 8]])
    gts = torch.tensor([[0.0, 0, 20, 20], [2, 2, 30, 30]])
    pred = torch.tensor([[0.0, 0, 20, 20]])
    res = DynamicSoftLabelAssigner().assign(priors, gts, torch.tensor([0, 1]), pred_scores=torch.zeros(1, 2),
                                            pred_bboxes=pred)
    assert res.gt_inds.tolist() == [1]


def test_pseudo_sampler():
    from det.core.models.task import AssignResult

    gt = torch.tensor([[0.0, 0, 1, 1], [2, 2, 3, 3]])
    assign = AssignResult(2, torch.tensor([0, 2, -1, 1]), torch.zeros(4), torch.tensor([-1, 5, -1, 4]))
    res = PseudoSampler().sample(assign, gt, torch.tensor([4, 5]))
    assert res.pos_inds.tolist() == [1, 3] and res.neg_inds.tolist() == [0]
    assert res.pos_gt_labels.tolist() == [5, 4]
    torch.testing.assert_close(res.pos_gt_bboxes, gt[[1, 0]])


def _dsl_reference(priors, gts, labels, scores, boxes, topk=13, radius=3.0, iou_weight=3.0):
    """The assigner written out with the full (prior, gt, class) soft-label cost."""
    import torch.nn.functional as F
    from torchvision.ops import box_iou

    c = priors[:, :2]
    inside = torch.cat([c[:, None] - gts[:, :2], gts[:, 2:] - c[:, None]], -1).min(-1).values > 0
    valid = inside.any(1)
    vi = valid.nonzero().squeeze(1)
    dist = (priors[vi, None, :2] - (gts[:, :2] + gts[:, 2:]) / 2).pow(2).sum(-1).sqrt() / priors[vi, 2:3]
    ious = box_iou(boxes[vi], gts)
    soft = F.one_hot(labels, scores.shape[1]).float()[None] * ious[..., None]
    s = scores[vi][:, None].expand(-1, len(gts), -1)
    cls_cost = (F.binary_cross_entropy_with_logits(s, soft, reduction="none") * (soft - s.sigmoid()).abs() ** 2).sum(-1)
    cost = cls_cost + -torch.log(ious + 1e-7) * iou_weight + 10 ** (dist - radius)
    match = torch.zeros_like(cost, dtype=torch.bool)
    ks = torch.topk(ious, min(topk, len(vi)), dim=0).values.sum(0).int().clamp(min=1)
    for g in range(len(gts)):
        match[torch.topk(cost[:, g], int(ks[g]), largest=False).indices, g] = True
    for p in range(len(vi)):
        if match[p].sum() > 1:
            match[p] = False
            match[p, cost[p].argmin()] = True
    gt_inds = torch.zeros(len(priors), dtype=torch.long)
    fg = match.any(1)
    gt_inds[vi[fg]] = match[fg].float().argmax(1) + 1
    return gt_inds


def test_dynamic_soft_label_assigner_equals_full_cost_reference():
    g = torch.Generator().manual_seed(3)
    priors = MlvlPointGenerator([8, 16], offset=0).grid_priors([(8, 8), (4, 4)], with_stride=True)
    priors = torch.cat(priors)
    gts = torch.tensor([[4.0, 4, 30, 40], [20, 10, 60, 50], [35, 30, 62, 63]])
    labels = torch.tensor([0, 2, 2])
    scores = torch.randn(len(priors), 4, generator=g)
    jitter = torch.rand(len(priors), 4, generator=g) * 16 - 8
    boxes = torch.cat([priors[:, :2] - 10, priors[:, :2] + 10], 1) + jitter
    res = DynamicSoftLabelAssigner().assign(priors, gts, labels, pred_scores=scores, pred_bboxes=boxes)
    expected = _dsl_reference(priors, gts, labels, scores, boxes)
    assert (expected > 0).sum() > 3
    assert torch.equal(res.gt_inds, expected)
