"""YOLOX head (YOLOXHead): decoupled per-level class and box towers, an objectness branch on the
box tower, SimOTA assignment; BCE class loss against IoU-scaled one-hot targets, square IoU box
loss, BCE objectness over all priors, and the L1 loss on raw offsets that YOLOX adds for its last
epochs (`use_l1`, switched on by the trainer's pipeline switch)."""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from det.core.config.build import build
from det.core.models._ops import batched_nms
from det.core.models.backbones.csp_darknet import SWISH, kaiming_uniform_init
from det.core.models.dense_heads.base import DenseHead, TestSettings, flatten_levels, gt_of, reduce_mean
from det.core.models.layers import ConvModule, DepthwiseSeparableConvModule, bias_init_with_prob
from det.core.models.losses import LOSSES
from det.core.models.task import PRIOR_GENERATORS
from det.core.structures import DetSample, Instances

DEFAULT_NORM = {"type": "BN", "momentum": 0.03, "eps": 0.001}
DEFAULT_LOSSES = {
    "loss_cls": {"type": "CrossEntropyLoss", "use_sigmoid": True, "reduction": "sum", "loss_weight": 1.0},
    "loss_bbox": {"type": "IoULoss", "mode": "square", "eps": 1e-16, "reduction": "sum", "loss_weight": 5.0},
    "loss_obj": {"type": "CrossEntropyLoss", "use_sigmoid": True, "reduction": "sum", "loss_weight": 1.0},
    "loss_l1": {"type": "L1Loss", "reduction": "sum", "loss_weight": 1.0},
}


def decode(priors: torch.Tensor, preds: torch.Tensor) -> torch.Tensor:
    """(dx, dy, log w, log h) in stride units around priors (x, y, sw, sh) -> xyxy."""
    xy = preds[..., :2] * priors[:, 2:] + priors[:, :2]
    half = preds[..., 2:].exp() * priors[:, 2:] / 2
    return torch.cat([xy - half, xy + half], dim=-1)


class YOLOXHead(DenseHead):
    default_assigner = {"type": "SimOTAAssigner", "center_radius": 2.5}

    def __init__(self, num_classes: int, in_channels: int, feat_channels: int = 256, stacked_convs: int = 2,
                 strides: Sequence[int] = (8, 16, 32), use_depthwise: bool = False, conv_bias: bool | str = "auto",
                 norm_cfg: dict | None = None, act_cfg: dict | None = None, loss_cls: dict | None = None,
                 loss_bbox: dict | None = None, loss_obj: dict | None = None, loss_l1: dict | None = None,
                 train_cfg: dict | None = None, test_cfg: dict | None = None) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.use_l1 = False
        self.prior_generator = build({"type": "MlvlPointGenerator", "strides": list(strides), "offset": 0},
                                     PRIOR_GENERATORS, "strides")
        given = {"loss_cls": loss_cls, "loss_bbox": loss_bbox, "loss_obj": loss_obj, "loss_l1": loss_l1}
        for key, cfg in given.items():
            setattr(self, key, build(cfg or DEFAULT_LOSSES[key], LOSSES, key))
        conv = DepthwiseSeparableConvModule if use_depthwise else ConvModule
        norm_cfg, act_cfg = norm_cfg or DEFAULT_NORM, act_cfg or SWISH

        def tower() -> nn.Sequential:
            layers = []
            for i in range(stacked_convs):
                kw = {} if use_depthwise else {"bias": conv_bias}
                layers.append(conv(in_channels if i == 0 else feat_channels, feat_channels, 3, stride=1, padding=1,
                                   norm_cfg=norm_cfg, act_cfg=act_cfg, **kw))
            return nn.Sequential(*layers)

        levels = len(strides)
        self.multi_level_cls_convs = nn.ModuleList(tower() for _ in range(levels))
        self.multi_level_reg_convs = nn.ModuleList(tower() for _ in range(levels))
        self.multi_level_conv_cls = nn.ModuleList(nn.Conv2d(feat_channels, num_classes, 1) for _ in range(levels))
        self.multi_level_conv_reg = nn.ModuleList(nn.Conv2d(feat_channels, 4, 1) for _ in range(levels))
        self.multi_level_conv_obj = nn.ModuleList(nn.Conv2d(feat_channels, 1, 1) for _ in range(levels))
        kaiming_uniform_init(self)
        prior = bias_init_with_prob(0.01)
        for cls, obj in zip(self.multi_level_conv_cls, self.multi_level_conv_obj):
            nn.init.constant_(cls.bias, prior)
            nn.init.constant_(obj.bias, prior)
        self.set_train_cfg(train_cfg)
        self.set_test_cfg(test_cfg)

    def set_test_cfg(self, test_cfg: dict | None) -> None:
        """YOLOX keeps every detection NMS leaves unless `max_per_img` is given (MMDetection's)."""
        self.test_cfg = TestSettings.parse(test_cfg)
        if "max_per_img" not in (test_cfg or {}):
            self.test_cfg.max_per_img = -1

    def forward(self, feats: Sequence[torch.Tensor]) -> tuple[list[torch.Tensor], ...]:
        """Per level: class logits (B, C, H, W), box offsets (B, 4, H, W), objectness (B, 1, H, W)."""
        cls_scores, bbox_preds, objectness = [], [], []
        for i, x in enumerate(feats):
            c = self.multi_level_cls_convs[i](x)
            r = self.multi_level_reg_convs[i](x)
            cls_scores.append(self.multi_level_conv_cls[i](c))
            bbox_preds.append(self.multi_level_conv_reg[i](r))
            objectness.append(self.multi_level_conv_obj[i](r))
        return cls_scores, bbox_preds, objectness

    def _flat(self, cls_scores, bbox_preds, objectness) -> tuple[torch.Tensor, ...]:
        sizes = [tuple(c.shape[-2:]) for c in cls_scores]
        priors = torch.cat(self.prior_generator.grid_priors(sizes, device=cls_scores[0].device, with_stride=True))
        cls = flatten_levels(cls_scores, self.num_classes)
        reg = flatten_levels(bbox_preds, 4)
        obj = flatten_levels(objectness, 1).squeeze(-1)
        return priors, cls, reg, obj, decode(priors, reg)

    def loss_by_feat(self, cls_scores: list[torch.Tensor], bbox_preds: list[torch.Tensor],
                     objectness: list[torch.Tensor], samples: Sequence[DetSample]) -> dict[str, torch.Tensor]:
        priors, cls, reg, obj, boxes = self._flat(cls_scores, bbox_preds, objectness)
        targets = [self._targets(priors, cls[i].detach(), boxes[i].detach(), obj[i].detach(), s)
                   for i, s in enumerate(samples)]
        pos_mask = torch.cat([t[0] for t in targets])
        cls_t, obj_t, box_t, l1_t = (torch.cat([t[k] for t in targets]) for k in range(1, 5))
        num_pos = pos_mask.sum().float()
        norm = max(float(reduce_mean(num_pos)), 1.0)
        losses = {"loss_obj": self.loss_obj(obj.reshape(-1, 1), obj_t) / norm}
        if num_pos > 0:
            losses["loss_cls"] = self.loss_cls(cls.reshape(-1, self.num_classes)[pos_mask], cls_t) / norm
            losses["loss_bbox"] = self.loss_bbox(boxes.reshape(-1, 4)[pos_mask], box_t) / norm
        else:  # keep every branch in the graph when no image has a target
            losses["loss_cls"] = cls.sum() * 0
            losses["loss_bbox"] = boxes.sum() * 0
        if self.use_l1:
            losses["loss_l1"] = self.loss_l1(reg.reshape(-1, 4)[pos_mask], l1_t) / norm if num_pos > 0 \
                else reg.sum() * 0
        return {k: losses[k] for k in ("loss_cls", "loss_bbox", "loss_obj", "loss_l1") if k in losses}

    @torch.no_grad()
    def _targets(self, priors: torch.Tensor, cls: torch.Tensor, boxes: torch.Tensor, obj: torch.Tensor,
                 sample: DetSample) -> tuple[torch.Tensor, ...]:
        """(positive mask, class targets, objectness targets, box targets, L1 targets) of one image."""
        gt_boxes, gt_labels, _ = gt_of(sample, priors.device)
        n = priors.size(0)
        pos_mask = torch.zeros(n, dtype=torch.bool, device=priors.device)
        obj_t = cls.new_zeros((n, 1))
        if gt_boxes.size(0) == 0:
            return pos_mask, cls.new_zeros((0, self.num_classes)), obj_t, cls.new_zeros((0, 4)), cls.new_zeros((0, 4))
        # assignment uses cell-centre priors; regression decodes around the cell corner
        centred = torch.cat([priors[:, :2] + priors[:, 2:] * 0.5, priors[:, 2:]], dim=-1)
        scores = (cls.float().sigmoid() * obj.float().sigmoid()[:, None]).sqrt()
        assign = self.assigner.assign(centred, gt_boxes, gt_labels, pred_scores=scores, pred_bboxes=boxes.float())
        pos = (assign.gt_inds > 0).nonzero().squeeze(1)
        pos_mask[pos] = True
        obj_t[pos] = 1
        matched = assign.gt_inds[pos] - 1
        cls_t = F.one_hot(gt_labels[matched], self.num_classes).float() * assign.max_overlaps[pos, None]
        box_t = gt_boxes[matched]
        l1_t = cls.new_zeros((pos.numel(), 4))
        if self.use_l1:
            l1_t = self.l1_targets(box_t, priors[pos])
        return pos_mask, cls_t, obj_t, box_t, l1_t

    @staticmethod
    def l1_targets(gt: torch.Tensor, priors: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
        """The inverse of `decode`: gt centre offsets and log sizes in stride units."""
        cxcy = (gt[:, :2] + gt[:, 2:]) / 2
        wh = gt[:, 2:] - gt[:, :2]
        return torch.cat([(cxcy - priors[:, :2]) / priors[:, 2:], torch.log(wh / priors[:, 2:] + eps)], dim=1)

    def decode_level(self, outs: list[torch.Tensor], priors: torch.Tensor, prior_idx: torch.Tensor, level: int,
                     img_shape: tuple[int, int]) -> torch.Tensor:
        """The base interface (one level of one image); YOLOX's predict_by_feat decodes all at once."""
        reg = outs[1].permute(1, 2, 0).reshape(-1, 4)[prior_idx].float()
        points = priors[prior_idx, :2]
        strides = points.new_tensor(self.prior_generator.strides[level]).expand(points.size(0), 2)
        return decode(torch.cat([points, strides], 1), reg)

    def predict_by_feat(self, cls_scores: list[torch.Tensor], bbox_preds: list[torch.Tensor],
                        objectness: list[torch.Tensor], samples: Sequence[DetSample],
                        rescale: bool = True) -> list[Instances]:
        """Score = max class probability x objectness >= score_thr, class-wise NMS; boxes mapped
        back to the original image without clipping (as MMDetection's YOLOX)."""
        _, cls, _, obj, boxes = self._flat(cls_scores, bbox_preds, objectness)
        cls, obj, boxes = cls.float().sigmoid(), obj.float().sigmoid(), boxes.float()
        cfg = self.test_cfg
        results = []
        for i, sample in enumerate(samples):
            best, labels = cls[i].max(dim=1)
            keep = obj[i] * best >= cfg.score_thr
            b, s, lab = boxes[i][keep], best[keep] * obj[i][keep], labels[keep]
            if rescale:  # before NMS, as MMDetection
                b = sample.boxes_to_original(b, clip=False)
            if b.numel():
                order = batched_nms(b, s, lab, cfg.iou_threshold)
                if cfg.max_per_img > 0:
                    order = order[: cfg.max_per_img]
                b, s, lab = b[order], s[order], lab[order]
            results.append(Instances(bboxes=b, labels=lab, scores=s))
        return results
