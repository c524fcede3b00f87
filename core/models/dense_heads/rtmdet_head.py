"""RTMDet head (RTMDetSepBNHead): per-level towers whose convs are shared across levels while
each level keeps its own BatchNorm, QFL classification, GIoU on decoded boxes and the
DynamicSoftLabelAssigner."""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from det.core.config.build import build
from det.core.models.dense_heads.base import DenseHead, flatten_levels, gt_of, reduce_mean
from det.core.models.layers import ConvModule, DepthwiseSeparableConvModule
from det.core.models.losses import LOSSES
from det.core.models.task import CODERS, PRIOR_GENERATORS

DEFAULT_NORM = {"type": "BN", "momentum": 0.03, "eps": 0.001}


class RTMDetSepBNHead(DenseHead):
    train_keys = frozenset({"allowed_border", "pos_weight"})
    default_assigner = {"type": "DynamicSoftLabelAssigner", "topk": 13}

    def __init__(self, num_classes: int, in_channels: int, feat_channels: int = 256, stacked_convs: int = 2,
                 share_conv: bool = True, use_depthwise: bool = False, pred_kernel_size: int = 1,
                 exp_on_reg: bool = False, norm_cfg: dict | None = None, act_cfg: dict | None = None,
                 anchor_generator: dict | None = None, bbox_coder: dict | None = None, loss_cls: dict | None = None,
                 loss_bbox: dict | None = None, train_cfg: dict | None = None, test_cfg: dict | None = None) -> None:
        super().__init__()
        norm_cfg = norm_cfg or DEFAULT_NORM
        act_cfg = act_cfg or {"type": "SiLU"}
        self.num_classes = num_classes
        self.exp_on_reg = exp_on_reg
        self.prior_generator = build(anchor_generator or {"type": "MlvlPointGenerator", "offset": 0,
                                                          "strides": [8, 16, 32]}, PRIOR_GENERATORS,
                                     "anchor_generator")
        self.bbox_coder = build(bbox_coder or {"type": "DistancePointBBoxCoder"}, CODERS, "bbox_coder")
        self.loss_cls = build(loss_cls or {"type": "QualityFocalLoss", "beta": 2.0, "loss_weight": 1.0},
                              LOSSES, "loss_cls")
        self.loss_bbox = build(loss_bbox or {"type": "GIoULoss", "loss_weight": 2.0}, LOSSES, "loss_bbox")
        conv = DepthwiseSeparableConvModule if use_depthwise else ConvModule
        levels = self.prior_generator.num_levels
        self.cls_convs = nn.ModuleList()
        self.reg_convs = nn.ModuleList()
        self.rtm_cls = nn.ModuleList()
        self.rtm_reg = nn.ModuleList()
        pad = pred_kernel_size // 2
        for _ in range(levels):
            cls_convs, reg_convs = nn.ModuleList(), nn.ModuleList()
            for i in range(stacked_convs):
                chn = in_channels if i == 0 else feat_channels
                cls_convs.append(conv(chn, feat_channels, 3, stride=1, padding=1, norm_cfg=norm_cfg, act_cfg=act_cfg))
                reg_convs.append(conv(chn, feat_channels, 3, stride=1, padding=1, norm_cfg=norm_cfg, act_cfg=act_cfg))
            self.cls_convs.append(cls_convs)
            self.reg_convs.append(reg_convs)
            self.rtm_cls.append(nn.Conv2d(feat_channels, num_classes, pred_kernel_size, padding=pad))
            self.rtm_reg.append(nn.Conv2d(feat_channels, 4, pred_kernel_size, padding=pad))
        self.init_convs(*self.rtm_cls)
        if share_conv:
            # one set of conv weights for all levels; the norms stay per level
            for n in range(1, levels):
                for i in range(stacked_convs):
                    self.cls_convs[n][i].conv = self.cls_convs[0][i].conv
                    self.reg_convs[n][i].conv = self.reg_convs[0][i].conv
        self.set_train_cfg(train_cfg)
        self.set_test_cfg(test_cfg)

    def forward(self, feats: Sequence[torch.Tensor]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Class logits and (l, t, r, b) distances in pixels per level."""
        cls_scores, bbox_preds = [], []
        for idx, x in enumerate(feats):
            c, r = x, x
            for layer in self.cls_convs[idx]:
                c = layer(c)
            for layer in self.reg_convs[idx]:
                r = layer(r)
            stride = self.prior_generator.strides[idx][0]
            reg = self.rtm_reg[idx](r)
            cls_scores.append(self.rtm_cls[idx](c))
            bbox_preds.append((reg.exp() if self.exp_on_reg else reg) * stride)
        return cls_scores, bbox_preds

    def loss_by_feat(self, cls_scores: list[torch.Tensor], bbox_preds: list[torch.Tensor],
                     samples: Sequence) -> dict[str, torch.Tensor]:
        priors, cls, decoded = self.flatten_outputs(cls_scores, bbox_preds)
        targets = self.get_targets(priors, cls, decoded, [tuple(c.shape[-2:]) for c in cls_scores], samples)
        return self.box_losses(cls, decoded, *targets[:4])

    def flatten_outputs(self, cls_scores: list[torch.Tensor], bbox_preds: list[torch.Tensor]
                        ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(priors (N, 4) with strides, class logits (B, N, C), decoded unclipped boxes (B, N, 4))."""
        sizes = [tuple(c.shape[-2:]) for c in cls_scores]
        priors = torch.cat(self.prior_generator.grid_priors(sizes, device=cls_scores[0].device, with_stride=True))
        cls = flatten_levels(cls_scores, self.num_classes)
        dist = flatten_levels(bbox_preds, 4).float()
        return priors, cls, self.bbox_coder.decode(priors[None, :, :2], dist)

    def get_targets(self, priors: torch.Tensor, cls: torch.Tensor, decoded: torch.Tensor, sizes: list,
                    samples: Sequence) -> tuple:
        """Flat (labels, label weights, box targets, IoU metrics) over the batch, and per image
        (positive prior indices, their gt indices)."""
        b, n = cls.shape[:2]
        device = cls.device
        labels = torch.full((b, n), self.num_classes, dtype=torch.long, device=device)
        label_w = torch.zeros((b, n), device=device)
        targets = torch.zeros((b, n, 4), device=device)
        metrics = torch.zeros((b, n), device=device)
        cls_d, dec_d = cls.detach(), decoded.detach()
        border = self.train_cfg.get("allowed_border", -1)
        pos_weight = self.train_cfg.get("pos_weight", -1)
        assigned = []
        for i, s in enumerate(samples):
            valid = torch.cat(self.prior_generator.valid_flags(sizes, s.valid_shape, device))
            if border >= 0:
                h, w = s.valid_shape
                valid = valid & (priors[:, 0] >= -border) & (priors[:, 1] >= -border) & \
                    (priors[:, 0] < w + border) & (priors[:, 1] < h + border)
            idx = valid.nonzero().squeeze(1)
            boxes, gt_labels, _ = gt_of(s, device)
            assign = self.assigner.assign(priors[idx], boxes, gt_labels, pred_scores=cls_d[i, idx],
                                          pred_bboxes=dec_d[i, idx])
            res = self.sampler.sample(assign, boxes, gt_labels)
            pos, neg = idx[res.pos_inds], idx[res.neg_inds]
            if pos.numel():
                targets[i, pos] = res.pos_gt_bboxes
                labels[i, pos] = res.pos_gt_labels
                label_w[i, pos] = 1.0 if pos_weight <= 0 else float(pos_weight)
                metrics[i, pos] = assign.max_overlaps[res.pos_inds].float()
            label_w[i, neg] = 1.0
            assigned.append((pos, res.pos_assigned_gt_inds))
        return labels.reshape(-1), label_w.reshape(-1), targets.reshape(-1, 4), metrics.reshape(-1), assigned

    def box_losses(self, cls: torch.Tensor, decoded: torch.Tensor, labels: torch.Tensor, label_w: torch.Tensor,
                   targets: torch.Tensor, metrics: torch.Tensor) -> dict[str, torch.Tensor]:
        """QFL over all priors and IoU-weighted GIoU over positives, each over its reduced weight sum."""
        loss_cls = self.loss_cls(cls.reshape(-1, self.num_classes), (labels, metrics), label_w, avg_factor=1.0)
        pos = ((labels >= 0) & (labels < self.num_classes)).nonzero().squeeze(1)
        if pos.numel():
            pos_w = metrics[pos]
            loss_bbox = self.loss_bbox(decoded.reshape(-1, 4)[pos], targets[pos], weight=pos_w, avg_factor=1.0)
            bbox_avg = pos_w.sum()
        else:
            loss_bbox = decoded.sum() * 0
            bbox_avg = metrics.new_tensor(0.0)
        cls_avg = reduce_mean(metrics.sum()).clamp(min=1).item()
        bbox_avg = reduce_mean(bbox_avg).clamp(min=1).item()
        return {"loss_cls": loss_cls / cls_avg, "loss_bbox": loss_bbox / bbox_avg}

    def level_priors(self, featmap_sizes, dtype, device):
        return self.prior_generator.grid_priors(featmap_sizes, device=device)

    def decode_level(self, outs: list[torch.Tensor], priors: torch.Tensor, prior_idx: torch.Tensor, level: int,
                     img_shape: tuple[int, int]) -> torch.Tensor:
        reg = outs[1].permute(1, 2, 0).reshape(-1, 4)[prior_idx]
        return self.bbox_coder.decode(priors[prior_idx], reg, max_shape=img_shape)
