"""RoI components against references: RoI level mapping and pooling vs torchvision's
MultiScaleRoIAlign, mask pasting vs a whole-image grid_sample reference, mask targets by hand,
random sampling counts, gt-as-proposal sampling and class-wise NMS vs torchvision."""
from collections import OrderedDict

import pytest
import torch
import torch.nn.functional as F
import torchvision

from det.core.models.roi_heads import SingleRoIExtractor, boxes_to_rois, multiclass_nms
from det.core.models.roi_heads.standard_roi_head import RCNNTestSettings, sample_rois
from det.core.models.task import AssignResult, MaxIoUAssigner, RandomSampler
from det.core.models.task.masks import mask_targets, paste_masks
from det.core.structures import DetSample, Instances


def _boxes(n: int, size: float, g: torch.Generator) -> torch.Tensor:
    xy = torch.rand(n, 2, generator=g) * size * 0.8
    wh = torch.rand(n, 2, generator=g) * size * 0.6 + 2
    return torch.cat([xy, xy + wh], 1)


def test_roi_extractor_matches_torchvision_multiscale_roi_align():
    g = torch.Generator().manual_seed(0)
    feats = [torch.randn(2, 8, 64 // s, 96 // s, generator=g) for s in (1, 2, 4, 8)]
    strides = [4, 8, 16, 32]
    boxes = []
    for n in (40, 30):  # sizes 8..600 px, so that every level gets RoIs
        xy = torch.rand(n, 2, generator=g) * torch.tensor([300.0, 200.0])
        wh = torch.exp(torch.rand(n, 2, generator=g) * (6.4 - 2.1) + 2.1)
        boxes.append(torch.cat([xy, xy + wh], 1))
    ours = SingleRoIExtractor({"type": "RoIAlign", "output_size": 7, "sampling_ratio": 2, "aligned": False},
                              8, strides)
    levels = ours.map_roi_levels(boxes_to_rois(boxes))
    assert set(levels.tolist()) == {0, 1, 2, 3}  # every level used
    ref = torchvision.ops.MultiScaleRoIAlign(["0", "1", "2", "3"], 7, 2)
    named = OrderedDict((str(i), f) for i, f in enumerate(feats))
    expected = ref(named, boxes, [(256, 384), (256, 384)])
    got = ours(feats, boxes_to_rois(boxes))
    assert (got - expected).abs().max().item() < 1e-5
    # level rule by hand: sqrt(area) < 112 -> level 0, [112, 224) -> 1, [224, 448) -> 2, >= 448 -> 3
    rois = torch.tensor([[0, 0, 0, 111, 111], [0, 0, 0, 112, 112], [0, 0, 0, 300, 300], [0, 0, 0, 900, 500]],
                        dtype=torch.float32)
    assert ours.map_roi_levels(rois).tolist() == [0, 1, 2, 3]


def _paste_reference(probs: torch.Tensor, boxes: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Whole-image grid_sample of each mask: pixel centres mapped into the box's [-1, 1] range."""
    out = []
    for p, (x0, y0, x1, y1) in zip(probs, boxes.tolist()):
        gx = (torch.arange(w).float() + 0.5 - x0) / (x1 - x0) * 2 - 1
        gy = (torch.arange(h).float() + 0.5 - y0) / (y1 - y0) * 2 - 1
        grid = torch.stack([gx[None].expand(h, w), gy[:, None].expand(h, w)], -1)
        out.append(F.grid_sample(p[None, None], grid[None], align_corners=False)[0, 0])
    return torch.stack(out)


def test_paste_masks_equals_whole_image_sampling():
    g = torch.Generator().manual_seed(1)
    probs = torch.rand(6, 28, 28, generator=g)
    boxes = torch.cat([_boxes(5, 50.0, g), torch.tensor([[-5.0, 30.0, 20.5, 70.0]])])  # one leaves the image
    soft = paste_masks(probs, boxes, 48, 64, threshold=-1)
    ref = _paste_reference(probs, boxes, 48, 64)
    assert (soft - ref).abs().max().item() < 1e-6
    assert torch.equal(paste_masks(probs, boxes, 48, 64, 0.5), ref >= 0.5)
    # a full mask covers exactly the pixels whose centres lie inside the box
    full = paste_masks(torch.ones(1, 28, 28), torch.tensor([[10.0, 20.0, 30.0, 40.0]]), 50, 50)[0]
    expected = torch.zeros(50, 50, dtype=torch.bool)
    expected[20:40, 10:30] = True
    assert torch.equal(full, expected)


def test_mask_targets_by_hand():
    masks = torch.zeros(2, 40, 40, dtype=torch.bool)
    masks[0, 8:24, 4:36] = True  # rectangle (x 4..36, y 8..24)
    masks[1, :, :20] = True  # left half
    boxes = torch.tensor([[4.0, 8.0, 36.0, 24.0], [0.0, 0.0, 40.0, 40.0], [4.0, 8.0, 36.0, 24.0]])
    t = mask_targets(masks, boxes, torch.tensor([0, 1, 1]), 28)
    assert t.shape == (3, 28, 28)
    assert torch.equal(t[0], torch.ones(28, 28))  # the box is the mask
    expected = torch.zeros(28, 28)
    expected[:, :14] = 1
    assert torch.equal(t[1], expected)  # left half of the image box
    assert t[2].sum() > 0 and t[2][:, :8].sum() == 28 * 8  # box x 4..36 over the mask x < 20


def test_random_sampler_counts():
    torch.manual_seed(0)
    gt_inds = torch.cat([torch.arange(1, 4).repeat(100), torch.zeros(1000, dtype=torch.long),
                         torch.full((50,), -1)])
    assign = AssignResult(3, gt_inds, torch.zeros(len(gt_inds)), torch.zeros(len(gt_inds), dtype=torch.long))
    gt = torch.tensor([[0.0, 0, 10, 10], [5, 5, 20, 20], [1, 1, 3, 3]])
    res = RandomSampler(256, 0.25).sample(assign, gt, torch.tensor([0, 1, 2]))
    assert res.num_pos == 64 and res.neg_inds.numel() == 192
    assert (gt_inds[res.pos_inds] > 0).all() and (gt_inds[res.neg_inds] == 0).all()
    assert len(set(res.pos_inds.tolist())) == 64  # without replacement
    assert torch.equal(res.pos_gt_bboxes, gt[gt_inds[res.pos_inds] - 1])
    few = RandomSampler(256, 0.5, neg_pos_ub=2).sample(
        AssignResult(3, torch.tensor([1, 0, 0, 0, 0, 0, 2]), torch.zeros(7), torch.zeros(7, dtype=torch.long)),
        gt, torch.tensor([0, 1, 2]))
    assert few.num_pos == 2 and few.neg_inds.numel() == 4


def test_sample_rois_adds_gt_boxes_as_positives():
    torch.manual_seed(0)
    gt = torch.tensor([[10.0, 10, 50, 50], [60, 60, 90, 100]])
    sample = DetSample(img_shape=(128, 128), gt=Instances(bboxes=gt, labels=torch.tensor([3, 1])))
    proposals = torch.tensor([[11.0, 11, 50, 50], [100, 0, 120, 20], [0, 100, 20, 120]])
    assigner = MaxIoUAssigner(0.5, 0.5, 0.5, match_low_quality=False)
    s = sample_rois(proposals, sample, assigner, RandomSampler(512, 0.25), num_classes=5)
    assert s.num_pos == 3 and s.pos_is_gt.sum().item() == 2
    assert sorted(s.labels[:3].tolist()) == [1, 3, 3] and (s.labels[3:] == 5).all()
    assert s.labels.numel() == 5  # 2 gt + 1 positive proposal + 2 negatives
    assert torch.equal(s.pos_gt_boxes, gt[s.pos_gt_inds])
    no_gt = sample_rois(proposals, sample, assigner, RandomSampler(512, 0.25, add_gt_as_proposals=False), 5)
    assert no_gt.num_pos == 1 and not no_gt.pos_is_gt.any()


@pytest.mark.parametrize("agnostic", [False, True])
def test_multiclass_nms_matches_torchvision_postprocess(agnostic):
    g = torch.Generator().manual_seed(3)
    k, c = 60, 4
    base = _boxes(k, 80.0, g)
    boxes = base.repeat(1, 1 if agnostic else c) + torch.randn(k, 4 * (1 if agnostic else c), generator=g)
    scores = torch.softmax(torch.randn(k, c + 1, generator=g) * 3, -1)
    cfg = RCNNTestSettings(score_thr=0.05, iou_threshold=0.5, max_per_img=30)
    b, s, lab = multiclass_nms(boxes, scores, cfg, c)
    # reference: torchvision's RoIHeads.postprocess_detections order of operations
    rb = boxes.view(k, -1, 4).expand(k, c, 4).reshape(-1, 4)
    rs = scores[:, :c].reshape(-1)
    rl = torch.arange(c).expand(k, c).reshape(-1)
    keep = torch.where(rs > 0.05)[0]
    rb, rs, rl = rb[keep], rs[keep], rl[keep]
    keep = torchvision.ops.batched_nms(rb, rs, rl, 0.5)[:30]
    assert torch.equal(b, rb[keep]) and torch.equal(s, rs[keep]) and torch.equal(lab, rl[keep])
    assert len(b) == 30
