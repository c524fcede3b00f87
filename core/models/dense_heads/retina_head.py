"""RetinaNet head: 4 conv towers, A anchors per location, sigmoid focal classification and
delta (L1) or decoded-box (GIoU) regression."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from det.core.config.build import build
from det.core.models.dense_heads.base import (DenseHead, flatten_levels, gt_of, image_shape, reduce_mean,
                                                valid_shape)
from det.core.models.layers import ConvModule, bias_init_with_prob, normal_init
from det.core.models.losses import LOSSES
from det.core.models.task import CODERS, PRIOR_GENERATORS
from det.core.structures import DetSample

DEFAULT_ANCHORS = {"type": "AnchorGenerator", "octave_base_scale": 4, "scales_per_octave": 3,
                   "ratios": [0.5, 1.0, 2.0], "strides": [8, 16, 32, 64, 128]}


def inside_flags(anchors: torch.Tensor, valid: torch.Tensor, img_shape: tuple[int, int],
                 allowed_border: float) -> torch.Tensor:
    """Valid anchors lying within the image plus `allowed_border` (all valid ones when < 0)."""
    if allowed_border < 0:
        return valid
    h, w = img_shape
    return valid & (anchors[:, 0] >= -allowed_border) & (anchors[:, 1] >= -allowed_border) & \
        (anchors[:, 2] < w + allowed_border) & (anchors[:, 3] < h + allowed_border)


class RetinaHead(DenseHead):
    train_keys = frozenset({"allowed_border", "pos_weight"})
    default_assigner = {"type": "MaxIoUAssigner", "pos_iou_thr": 0.5, "neg_iou_thr": 0.4, "min_pos_iou": 0,
                        "ignore_iof_thr": -1}

    def __init__(self, num_classes: int, in_channels: int, stacked_convs: int = 4, feat_channels: int = 256,
                 norm_cfg: dict | None = None, anchor_generator: dict | None = None, bbox_coder: dict | None = None,
                 reg_decoded_bbox: bool = False, loss_cls: dict | None = None, loss_bbox: dict | None = None,
                 train_cfg: dict | None = None, test_cfg: dict | None = None) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.feat_channels = feat_channels
        self.prior_generator = build(anchor_generator or DEFAULT_ANCHORS, PRIOR_GENERATORS, "anchor_generator")
        self.bbox_coder = build(bbox_coder or {"type": "DeltaXYWHBBoxCoder"}, CODERS, "bbox_coder")
        self.reg_decoded_bbox = reg_decoded_bbox
        self.loss_cls = build(loss_cls or {"type": "FocalLoss", "gamma": 2.0, "alpha": 0.25, "loss_weight": 1.0},
                              LOSSES, "loss_cls")
        self.loss_bbox = build(loss_bbox or {"type": "L1Loss", "loss_weight": 1.0}, LOSSES, "loss_bbox")
        num_anchors = self.prior_generator.num_base_priors[0]
        self.cls_convs = nn.ModuleList()
        self.reg_convs = nn.ModuleList()
        for i in range(stacked_convs):
            chn = in_channels if i == 0 else feat_channels
            self.cls_convs.append(ConvModule(chn, feat_channels, 3, padding=1, norm_cfg=norm_cfg))
            self.reg_convs.append(ConvModule(chn, feat_channels, 3, padding=1, norm_cfg=norm_cfg))
        self.retina_cls = nn.Conv2d(feat_channels, num_anchors * num_classes, 3, padding=1)
        self.retina_reg = nn.Conv2d(feat_channels, num_anchors * 4, 3, padding=1)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                normal_init(m, std=0.01)
        normal_init(self.retina_cls, std=0.01, bias=bias_init_with_prob(0.01))
        self.set_train_cfg(train_cfg)
        self.set_test_cfg(test_cfg)

    def forward(self, feats: Sequence[torch.Tensor]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        cls_scores, bbox_preds = [], []
        for x in feats:
            c, r = x, x
            for conv in self.cls_convs:
                c = conv(c)
            for conv in self.reg_convs:
                r = conv(r)
            cls_scores.append(self.retina_cls(c))
            bbox_preds.append(self.retina_reg(r))
        return cls_scores, bbox_preds

    def loss_by_feat(self, cls_scores: list[torch.Tensor], bbox_preds: list[torch.Tensor],
                     samples: Sequence[DetSample]) -> dict[str, torch.Tensor]:
        anchors, labels, label_w, targets, pos = anchor_targets(self, cls_scores, samples,
                                                                reg_decoded_bbox=self.reg_decoded_bbox)
        cls = flatten_levels(cls_scores, self.num_classes).reshape(-1, self.num_classes)
        reg = flatten_levels(bbox_preds, 4).reshape(-1, 4)
        avg = reduce_mean(pos.sum().float()).clamp(min=1.0).item()
        loss_cls = self.loss_cls(cls, labels, label_w, avg_factor=avg)
        all_anchors = anchors.repeat(len(samples), 1)
        pos_reg = reg[pos]
        if self.reg_decoded_bbox:
            pos_reg = self.bbox_coder.decode(all_anchors[pos], pos_reg)
        loss_bbox = self.loss_bbox(pos_reg, targets[pos], avg_factor=avg) if pos.any() else reg.sum() * 0
        return {"loss_cls": loss_cls, "loss_bbox": loss_bbox}

    def decode_level(self, outs: list[torch.Tensor], priors: torch.Tensor, prior_idx: torch.Tensor, level: int,
                     img_shape: tuple[int, int]) -> torch.Tensor:
        reg = outs[1].permute(1, 2, 0).reshape(-1, 4)[prior_idx]
        return self.bbox_coder.decode(priors[prior_idx], reg, max_shape=img_shape)


def _image_anchor_targets(head: Any, anchors: torch.Tensor, level_ids: torch.Tensor, valid: torch.Tensor,
                          sample: DetSample, num_classes: int, class_agnostic: bool, reg_decoded_bbox: bool):
    """One image: per-anchor labels (`num_classes` = background), label weights, regression
    targets and the positive mask, from the head's assigner, sampler and box coder. Level-aware
    assigners (ATSS) get the number of usable anchors on each level."""
    n, device = anchors.size(0), anchors.device
    boxes, labels, ignore = gt_of(sample, device)
    if class_agnostic:
        labels = torch.zeros_like(labels)
    inside = inside_flags(anchors, valid, image_shape(sample), head.train_cfg.get("allowed_border", -1))
    idx = inside.nonzero().squeeze(1)
    num_level_priors = torch.bincount(level_ids[inside], minlength=head.prior_generator.num_levels).tolist()
    assign = head.assigner.assign(anchors[idx], boxes, labels, gt_ignore=ignore, num_level_priors=num_level_priors)
    res = head.sampler.sample(assign, boxes, labels)
    out_labels = torch.full((n,), num_classes, dtype=torch.long, device=device)
    label_w = torch.zeros(n, device=device)
    targets = torch.zeros((n, 4), device=device)
    pos, neg = idx[res.pos_inds], idx[res.neg_inds]
    if pos.numel():
        targets[pos] = res.pos_gt_bboxes if reg_decoded_bbox else head.bbox_coder.encode(anchors[pos], res.pos_gt_bboxes)
        out_labels[pos] = res.pos_gt_labels
        pw = head.train_cfg.get("pos_weight", -1)
        label_w[pos] = 1.0 if pw <= 0 else float(pw)
    label_w[neg] = 1.0
    pos_mask = torch.zeros(n, dtype=torch.bool, device=device)
    pos_mask[pos] = True
    return out_labels, label_w, targets, pos_mask


def anchor_targets(head: Any, cls_scores: Sequence[torch.Tensor], samples: Sequence[DetSample],
                   class_agnostic: bool = False, reg_decoded_bbox: bool = False):
    """Anchor-based training targets for a batch (RetinaNet, RPN): the anchors of one image and
    the labels, label weights, regression targets and positive mask of all images
    concatenated. `class_agnostic` (RPN) assigns every box to class 0, background 1."""
    sizes = [tuple(c.shape[-2:]) for c in cls_scores]
    device = cls_scores[0].device
    level_anchors = head.prior_generator.grid_priors(sizes, device=device)
    anchors = torch.cat(level_anchors)
    level_ids = torch.cat([torch.full((a.size(0),), i, dtype=torch.long, device=device)
                           for i, a in enumerate(level_anchors)])
    num_classes = 1 if class_agnostic else head.num_classes
    per_img = []
    for s in samples:
        valid = torch.cat(head.prior_generator.valid_flags(sizes, valid_shape(s), device))
        per_img.append(_image_anchor_targets(head, anchors, level_ids, valid, s, num_classes, class_agnostic,
                                             reg_decoded_bbox))
    labels, label_w, targets, pos = (torch.cat(t) for t in zip(*per_img))
    return anchors, labels, label_w, targets, pos
