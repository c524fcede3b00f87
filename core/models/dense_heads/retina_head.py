"""RetinaNet head: 4 conv towers, A anchors per location, sigmoid focal classification and
delta (L1) or decoded-box (GIoU) regression."""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from det.core.config.build import build
from det.core.models.dense_heads.anchor_head import AnchorHead, anchor_targets, inside_flags
from det.core.models.dense_heads.base import flatten_levels, reduce_mean
from det.core.models.losses import LOSSES
from det.core.models.task import CODERS, PRIOR_GENERATORS
from det.core.structures import DetSample

__all__ = ["AnchorHead", "DEFAULT_ANCHORS", "RetinaHead", "anchor_targets", "inside_flags"]  # re-exported names

DEFAULT_ANCHORS = {"type": "AnchorGenerator", "octave_base_scale": 4, "scales_per_octave": 3,
                   "ratios": [0.5, 1.0, 2.0], "strides": [8, 16, 32, 64, 128]}


class RetinaHead(AnchorHead):
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
        self.build_towers(in_channels, feat_channels, stacked_convs, norm_cfg=norm_cfg)
        self.retina_cls = nn.Conv2d(feat_channels, num_anchors * num_classes, 3, padding=1)
        self.retina_reg = nn.Conv2d(feat_channels, num_anchors * 4, 3, padding=1)
        self.init_convs(self.retina_cls)
        self.set_train_cfg(train_cfg)
        self.set_test_cfg(test_cfg)

    def forward(self, feats: Sequence[torch.Tensor]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        cls_scores, bbox_preds = [], []
        for x in feats:
            c, r = self.run_towers(x)
            cls_scores.append(self.retina_cls(c))
            bbox_preds.append(self.retina_reg(r))
        return cls_scores, bbox_preds

    def loss_by_feat(self, cls_scores: list[torch.Tensor], bbox_preds: list[torch.Tensor],
                     samples: Sequence[DetSample]) -> dict[str, torch.Tensor]:
        anchors, labels, label_w, targets, pos = self.anchor_targets(cls_scores, samples,
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
