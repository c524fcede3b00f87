"""FCOS head: per-point classification, (l, t, r, b) distance regression and centerness, with
regress ranges per level, optional center sampling and stride-normalised targets."""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from det.core.config.build import build, config_path
from det.core.errors import ConfigError
from det.core.models.dense_heads.base import DenseHead, flatten_levels, gt_of, reduce_mean
from det.core.models.layers import Scale
from det.core.models.losses import LOSSES
from det.core.models.task import CODERS, MlvlPointGenerator
from det.core.structures import DetSample

INF = 1e8


def centerness_target(targets: torch.Tensor) -> torch.Tensor:
    """sqrt(min(l, r) / max(l, r) * min(t, b) / max(t, b)) of (N, 4) distances."""
    lr = targets[:, [0, 2]]
    tb = targets[:, [1, 3]]
    if lr.numel() == 0:
        return lr[:, 0]
    c = (lr.min(-1).values / lr.max(-1).values) * (tb.min(-1).values / tb.max(-1).values)
    return torch.sqrt(c)


class FCOSHead(DenseHead):
    train_keys: frozenset[str] = frozenset()  # assigner/allowed_border/pos_weight: see det.core.config.compat

    def __init__(self, num_classes: int, in_channels: int, feat_channels: int = 256, stacked_convs: int = 4,
                 strides: Sequence[int] = (4, 8, 16, 32, 64),
                 regress_ranges: Sequence[Sequence[float]] = ((-1, 64), (64, 128), (128, 256), (256, 512),
                                                              (512, INF)),
                 center_sampling: bool = False, center_sample_radius: float = 1.5, norm_on_bbox: bool = False,
                 centerness_on_reg: bool = False, conv_bias: bool | str = "auto",
                 norm_cfg: dict | None = {"type": "GN", "num_groups": 32, "requires_grad": True},
                 bbox_coder: dict | None = None, loss_cls: dict | None = None, loss_bbox: dict | None = None,
                 loss_centerness: dict | None = None, train_cfg: dict | None = None,
                 test_cfg: dict | None = None) -> None:
        super().__init__()
        if len(regress_ranges) != len(strides):
            raise ConfigError(f"{config_path('regress_ranges')}: needs one (min, max) per stride ({len(strides)})")
        self.num_classes = num_classes
        self.strides = [int(s) for s in strides]
        self.regress_ranges = [(float(a), float(b)) for a, b in regress_ranges]
        self.center_sampling = center_sampling
        self.center_sample_radius = center_sample_radius
        self.norm_on_bbox = norm_on_bbox
        self.centerness_on_reg = centerness_on_reg
        self.prior_generator = MlvlPointGenerator(self.strides, offset=0.5)
        self.bbox_coder = build(bbox_coder or {"type": "DistancePointBBoxCoder"}, CODERS, "bbox_coder")
        self.loss_cls = build(loss_cls or {"type": "FocalLoss", "gamma": 2.0, "alpha": 0.25, "loss_weight": 1.0},
                              LOSSES, "loss_cls")
        self.loss_bbox = build(loss_bbox or {"type": "IoULoss", "loss_weight": 1.0}, LOSSES, "loss_bbox")
        self.loss_centerness = build(loss_centerness or {"type": "CrossEntropyLoss", "use_sigmoid": True,
                                                         "loss_weight": 1.0}, LOSSES, "loss_centerness")
        self.build_towers(in_channels, feat_channels, stacked_convs, bias=conv_bias, norm_cfg=norm_cfg)
        self.conv_cls = nn.Conv2d(feat_channels, num_classes, 3, padding=1)
        self.conv_reg = nn.Conv2d(feat_channels, 4, 3, padding=1)
        self.conv_centerness = nn.Conv2d(feat_channels, 1, 3, padding=1)
        self.scales = nn.ModuleList(Scale(1.0) for _ in self.strides)
        self.init_convs(self.conv_cls)
        self.set_train_cfg(train_cfg)
        self.set_test_cfg(test_cfg)

    def forward(self, feats: Sequence[torch.Tensor]) -> tuple[list[torch.Tensor], ...]:
        """Class logits, distances (in units of the level's stride when `norm_on_bbox`, else
        pixels) and centerness logits per level."""
        cls_scores, bbox_preds, centernesses = [], [], []
        for x, scale in zip(feats, self.scales):
            c, r = self.run_towers(x)
            cls_scores.append(self.conv_cls(c))
            centernesses.append(self.conv_centerness(r if self.centerness_on_reg else c))
            pred = scale(self.conv_reg(r)).float()
            bbox_preds.append(F.relu(pred) if self.norm_on_bbox else pred.exp())
        return cls_scores, bbox_preds, centernesses

    def _targets_single(self, points: torch.Tensor, ranges: torch.Tensor, strides: torch.Tensor,
                        sample: DetSample) -> tuple[torch.Tensor, torch.Tensor]:
        device = points.device
        boxes, labels, _ = gt_of(sample, device)
        n, g = points.size(0), boxes.size(0)
        if g == 0:
            return torch.full((n,), self.num_classes, dtype=torch.long, device=device), points.new_zeros((n, 4))
        areas = ((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))[None].expand(n, g).clone()
        xs, ys = points[:, 0:1], points[:, 1:2]
        b = boxes[None].expand(n, g, 4)
        targets = torch.stack([xs - b[..., 0], ys - b[..., 1], b[..., 2] - xs, b[..., 3] - ys], dim=-1)
        if self.center_sampling:
            cx = (b[..., 0] + b[..., 2]) / 2
            cy = (b[..., 1] + b[..., 3]) / 2
            radius = strides[:, None] * self.center_sample_radius
            x0 = torch.maximum(cx - radius, b[..., 0])
            y0 = torch.maximum(cy - radius, b[..., 1])
            x1 = torch.minimum(cx + radius, b[..., 2])
            y1 = torch.minimum(cy + radius, b[..., 3])
            inside = torch.stack([xs - x0, ys - y0, x1 - xs, y1 - ys], -1).min(-1).values > 0
        else:
            inside = targets.min(-1).values > 0
        max_d = targets.max(-1).values
        in_range = (max_d >= ranges[:, 0:1]) & (max_d <= ranges[:, 1:2])
        areas[~inside] = INF
        areas[~in_range] = INF
        min_area, which = areas.min(dim=1)
        out_labels = labels[which]
        out_labels[min_area == INF] = self.num_classes
        out_targets = targets[torch.arange(n, device=device), which]
        return out_labels, out_targets

    def loss_by_feat(self, cls_scores: list[torch.Tensor], bbox_preds: list[torch.Tensor],
                     centernesses: list[torch.Tensor], samples: Sequence[DetSample]) -> dict[str, torch.Tensor]:
        sizes = [tuple(c.shape[-2:]) for c in cls_scores]
        device = cls_scores[0].device
        pts = self.prior_generator.grid_priors(sizes, device=device)
        points = torch.cat(pts)
        ranges = torch.cat([points.new_tensor(r)[None].expand(p.size(0), 2) for r, p in zip(self.regress_ranges, pts)])
        strides = torch.cat([points.new_full((p.size(0),), float(s)) for s, p in zip(self.strides, pts)])
        labels, targets = [], []
        for s in samples:
            lab, tgt = self._targets_single(points, ranges, strides, s)
            if self.norm_on_bbox:
                tgt = tgt / strides[:, None]
            labels.append(lab)
            targets.append(tgt)
        labels = torch.cat(labels)
        targets = torch.cat(targets)
        cls = flatten_levels(cls_scores, self.num_classes).reshape(-1, self.num_classes)
        reg = flatten_levels(bbox_preds, 4).reshape(-1, 4)
        ctr = flatten_levels(centernesses, 1).reshape(-1)
        all_points = points.repeat(len(samples), 1)
        pos = ((labels >= 0) & (labels < self.num_classes)).nonzero().squeeze(1)
        num_pos = reduce_mean(torch.tensor(float(pos.numel()), device=device)).clamp(min=1.0).item()
        loss_cls = self.loss_cls(cls, labels, avg_factor=num_pos)
        if pos.numel():
            pos_targets = targets[pos]
            ctr_targets = centerness_target(pos_targets)
            denorm = reduce_mean(ctr_targets.sum().detach()).clamp(min=1e-6).item()
            p = all_points[pos]
            loss_bbox = self.loss_bbox(self.bbox_coder.decode(p, reg[pos]), self.bbox_coder.decode(p, pos_targets),
                                       weight=ctr_targets, avg_factor=denorm)
            loss_ctr = self.loss_centerness(ctr[pos], ctr_targets, avg_factor=num_pos)
        else:
            loss_bbox = reg[pos].sum()
            loss_ctr = ctr[pos].sum()
        return {"loss_cls": loss_cls, "loss_bbox": loss_bbox, "loss_centerness": loss_ctr}

    def level_scores(self, outs: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor | None]:
        cls = outs[0].permute(1, 2, 0).reshape(-1, self.num_classes).sigmoid()
        return cls, outs[2].reshape(-1).sigmoid()

    def decode_level(self, outs: list[torch.Tensor], priors: torch.Tensor, prior_idx: torch.Tensor, level: int,
                     img_shape: tuple[int, int]) -> torch.Tensor:
        reg = outs[1].permute(1, 2, 0).reshape(-1, 4)[prior_idx]
        if self.norm_on_bbox:
            reg = reg * self.strides[level]
        return self.bbox_coder.decode(priors[prior_idx], reg, max_shape=img_shape)
