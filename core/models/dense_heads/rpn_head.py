"""Region proposal network head (Faster R-CNN): one 3x3 conv, then per anchor a sigmoid
objectness logit and box deltas; trained with sampled anchors (binary cross-entropy + L1),
predicting proposals by per-level top-`nms_pre`, NMS per level and `max_per_img`."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from det.core.config.build import build, config_path
from det.core.errors import ConfigError
from det.core.models.dense_heads.anchor_head import AnchorHead
from det.core.models.dense_heads.base import TestSettings, flatten_levels, run_nms
from det.core.models.losses import LOSSES
from det.core.models.task import CODERS, PRIOR_GENERATORS
from det.core.structures import DetSample, Instances

DEFAULT_RPN_ANCHORS = {"type": "AnchorGenerator", "scales": [8], "ratios": [0.5, 1.0, 2.0],
                       "strides": [4, 8, 16, 32, 64]}


@dataclass
class ProposalSettings(TestSettings):
    """How proposals are made (`test_cfg.rpn` and `train_cfg.rpn_proposal`): a dense head's
    settings with the RPN's defaults."""

    iou_threshold: float = 0.7
    max_per_img: int = 1000
    score_thr: float = 0.0  # objectness probability below which anchors are dropped (torchvision's score_thresh)


class RPNHead(AnchorHead):
    """MMDetection's RPNHead (`rpn_conv`, `rpn_cls`, `rpn_reg`); `num_classes` is 1."""

    default_assigner = {"type": "MaxIoUAssigner", "pos_iou_thr": 0.7, "neg_iou_thr": 0.3, "min_pos_iou": 0.3,
                        "match_low_quality": True, "ignore_iof_thr": -1}

    def __init__(self, in_channels: int, feat_channels: int = 256, num_classes: int = 1, num_convs: int = 1,
                 anchor_generator: dict | None = None, bbox_coder: dict | None = None,
                 loss_cls: dict | None = None, loss_bbox: dict | None = None,
                 train_cfg: dict | None = None, test_cfg: dict | None = None) -> None:
        super().__init__()
        self.num_classes = 1
        self.in_channels = in_channels
        self.prior_generator = build(anchor_generator or DEFAULT_RPN_ANCHORS, PRIOR_GENERATORS, "anchor_generator")
        self.bbox_coder = build(bbox_coder or {"type": "DeltaXYWHBBoxCoder"}, CODERS, "bbox_coder")
        loss_cls = loss_cls or {"type": "CrossEntropyLoss", "use_sigmoid": True, "loss_weight": 1.0}
        if loss_cls.get("type") != "CrossEntropyLoss" or not loss_cls.get("use_sigmoid", False):
            raise ConfigError(f"{config_path('loss_cls')}: the RPN's objectness loss is CrossEntropyLoss "
                              "with use_sigmoid: true")
        self.loss_cls = build(loss_cls, LOSSES, "loss_cls")
        self.loss_bbox = build(loss_bbox or {"type": "L1Loss", "loss_weight": 1.0}, LOSSES, "loss_bbox")
        num_anchors = self.prior_generator.num_base_priors[0]
        convs = []
        for i in range(num_convs):
            convs += [nn.Conv2d(in_channels if i == 0 else feat_channels, feat_channels, 3, padding=1),
                      nn.ReLU(inplace=True)]
        # one conv keeps MMDetection's parameter names (rpn_conv.weight)
        self.rpn_conv = convs[0] if num_convs == 1 else nn.Sequential(*convs)
        self.rpn_cls = nn.Conv2d(feat_channels, num_anchors, 1)
        self.rpn_reg = nn.Conv2d(feat_channels, num_anchors * 4, 1)
        self.init_convs()
        self.set_train_cfg(train_cfg)
        self.set_test_cfg(test_cfg)

    def set_test_cfg(self, test_cfg: dict | None) -> None:
        self.test_cfg = ProposalSettings.parse(test_cfg)

    def forward(self, feats: Sequence[torch.Tensor]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        cls_scores, bbox_preds = [], []
        for x in feats:
            x = self.rpn_conv(x)
            if isinstance(self.rpn_conv, nn.Conv2d):
                x = F.relu(x)
            cls_scores.append(self.rpn_cls(x))
            bbox_preds.append(self.rpn_reg(x))
        return cls_scores, bbox_preds

    def loss_by_feat(self, cls_scores: list[torch.Tensor], bbox_preds: list[torch.Tensor],
                     samples: Sequence[DetSample]) -> dict[str, torch.Tensor]:
        _, labels, label_w, targets, pos = self.anchor_targets(cls_scores, samples, class_agnostic=True)
        labels = (labels == 0).float()  # objectness: 1 for the (single) foreground class
        cls = flatten_levels(cls_scores, 1).reshape(-1)
        reg = flatten_levels(bbox_preds, 4).reshape(-1, 4)
        # MMDetection averages both losses over the sampled anchors (positives + negatives)
        avg = max(float((label_w > 0).sum().item()), 1.0)
        loss_cls = self.loss_cls.loss_weight * F.binary_cross_entropy_with_logits(
            cls.float(), labels, label_w, reduction="sum") / avg
        loss_bbox = self.loss_bbox(reg[pos], targets[pos], avg_factor=avg) if pos.any() else reg.sum() * 0
        return {"loss_rpn_cls": loss_cls, "loss_rpn_bbox": loss_bbox}

    def predict_by_feat(self, cls_scores: list[torch.Tensor], bbox_preds: list[torch.Tensor],
                        samples: Sequence[DetSample], rescale: bool = False,
                        cfg: ProposalSettings | None = None) -> list[Instances]:
        """Proposals per image in network-input coordinates (scores = objectness)."""
        cfg = cfg or self.test_cfg
        sizes = [tuple(c.shape[-2:]) for c in cls_scores]
        priors = self.prior_generator.grid_priors(sizes, device=cls_scores[0].device)
        results = []
        for i, sample in enumerate(samples):
            img_shape = sample.input_shape
            boxes_all, scores_all, levels = [], [], []
            for lvl, (c, r) in enumerate(zip(cls_scores, bbox_preds)):
                scores = c[i].detach().permute(1, 2, 0).reshape(-1).sigmoid()
                idx = torch.arange(scores.numel(), device=scores.device)
                if 0 < cfg.nms_pre < scores.numel():
                    # a full sort, not topk: tied objectness then keeps MMDetection's order (and picks)
                    scores, idx = scores.sort(descending=True)
                    scores, idx = scores[:cfg.nms_pre], idx[:cfg.nms_pre]
                boxes_all.append(self.decode_level([c[i], r[i].detach()], priors[lvl], idx, lvl, img_shape))
                scores_all.append(scores)
                levels.append(torch.full_like(scores, lvl, dtype=torch.long))
            boxes, scores, lvl_ids = torch.cat(boxes_all).float(), torch.cat(scores_all).float(), torch.cat(levels)
            wh = boxes[:, 2:] - boxes[:, :2]
            ok = (wh[:, 0] > cfg.min_bbox_size) & (wh[:, 1] > cfg.min_bbox_size)
            if cfg.score_thr > 0:
                ok &= scores >= cfg.score_thr
            boxes, scores, lvl_ids = boxes[ok], scores[ok], lvl_ids[ok]
            if boxes.numel():
                keep, scores = run_nms(boxes, scores, lvl_ids, cfg, cfg.max_per_img)
                boxes = boxes[keep]
            results.append(Instances(bboxes=boxes, labels=torch.zeros(len(boxes), dtype=torch.long,
                                                                      device=boxes.device), scores=scores))
        return results
