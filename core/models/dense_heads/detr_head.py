"""DETR's prediction head and set-prediction loss: per decoder layer, Hungarian matching of the
queries to the ground truth, then classification + L1 + GIoU losses (the last layer's keys are
`loss_cls`, `loss_bbox`, `loss_iou`, earlier layers' `d{i}.loss_*`, as MMDetection)."""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from det.core.config.build import at_path, build, check_keys
from det.core.models.dense_heads.base import gt_of, reduce_mean
from det.core.models.losses import LOSSES, CrossEntropyLoss
from det.core.models.task import ASSIGNERS
from det.core.models.transformer import FFN
from det.core.structures import DetSample, Instances
from det.core.structures.boxes import cxcywh_to_xyxy, xyxy_to_cxcywh

DETR_ASSIGNER = {"type": "HungarianAssigner", "match_costs": [
    {"type": "ClassificationCost", "weight": 1.0}, {"type": "BBoxL1Cost", "weight": 5.0, "box_format": "xywh"},
    {"type": "IoUCost", "iou_mode": "giou", "weight": 2.0}]}


class DETRHead(nn.Module):
    """fc_cls on the decoder states; boxes (cx, cy, w, h) in [0, 1] from a 2-layer FFN + fc_reg."""

    def __init__(self, num_classes: int, embed_dims: int = 256, num_reg_fcs: int = 2, sync_cls_avg_factor: bool = False,
                 loss_cls: dict | None = None, loss_bbox: dict | None = None, loss_iou: dict | None = None) -> None:
        super().__init__()
        self.num_classes, self.embed_dims, self.num_reg_fcs = num_classes, embed_dims, num_reg_fcs
        self.sync_cls_avg_factor = sync_cls_avg_factor
        loss_cls = dict(loss_cls or {"type": "CrossEntropyLoss", "bg_cls_weight": 0.1, "class_weight": 1.0})
        class_weight = float(loss_cls.pop("class_weight", 1.0))
        self.bg_cls_weight = float(loss_cls.pop("bg_cls_weight", class_weight))
        self.loss_cls = build(loss_cls, LOSSES, "loss_cls")
        self.loss_bbox = build(loss_bbox or {"type": "L1Loss", "loss_weight": 5.0}, LOSSES, "loss_bbox")
        self.loss_iou = build(loss_iou or {"type": "GIoULoss", "loss_weight": 2.0}, LOSSES, "loss_iou")
        self.use_sigmoid = not isinstance(self.loss_cls, CrossEntropyLoss) or self.loss_cls.use_sigmoid
        if self.use_sigmoid:
            self.bg_cls_weight = 0.0
        self.class_weight = class_weight
        self.cls_out_channels = num_classes if self.use_sigmoid else num_classes + 1
        self._init_layers()

    def _init_layers(self) -> None:
        self.fc_cls = nn.Linear(self.embed_dims, self.cls_out_channels)
        self.activate = nn.ReLU()
        self.reg_ffn = FFN(self.embed_dims, self.embed_dims, self.num_reg_fcs, {"type": "ReLU"}, add_identity=False)
        self.fc_reg = nn.Linear(self.embed_dims, 4)

    def set_train_cfg(self, train_cfg: dict | None) -> None:
        cfg = check_keys(train_cfg, {"assigner"}, "")
        self.assigner = build(cfg.get("assigner", DETR_ASSIGNER), ASSIGNERS, "assigner")

    def set_test_cfg(self, test_cfg: dict | None) -> None:
        self.max_per_img = int(check_keys(test_cfg, {"max_per_img"}, "").get("max_per_img", 100))

    def forward(self, hidden_states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(layers, B, Q, C) states -> class logits (layers, B, Q, K[+1]), boxes (layers, B, Q, 4)."""
        boxes = self.fc_reg(self.activate(self.reg_ffn(hidden_states))).sigmoid()
        return self.fc_cls(hidden_states), boxes

    def loss(self, hidden_states: torch.Tensor, samples: Sequence[DetSample]) -> dict[str, torch.Tensor]:
        return self.loss_by_feat(*self(hidden_states), samples)

    def loss_by_feat(self, all_cls: torch.Tensor, all_boxes: torch.Tensor,
                     samples: Sequence[DetSample]) -> dict[str, torch.Tensor]:
        losses = [self.loss_single(c, b, samples) for c, b in zip(all_cls, all_boxes)]
        return layer_losses(losses)

    def loss_single(self, cls: torch.Tensor, boxes: torch.Tensor,
                    samples: Sequence[DetSample]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(loss_cls, loss_bbox, loss_iou) of one decoder layer; boxes normalised cxcywh."""
        labels, box_targets, box_weights, factors = self.get_targets(cls, boxes, samples)
        return self.losses(cls.flatten(0, 1), boxes.flatten(0, 1), labels, box_targets, box_weights, factors)

    def get_targets(self, cls: torch.Tensor, boxes: torch.Tensor, samples: Sequence[DetSample]):
        """Per query of the batch: labels (num_classes = background), normalised cxcywh box
        targets, box weights, and the (w, h, w, h) factor of its image."""
        out = [self.target_single(c, b, s) for c, b, s in zip(cls, boxes, samples)]
        return tuple(torch.cat(t) for t in zip(*out))

    def target_single(self, cls: torch.Tensor, boxes: torch.Tensor, sample: DetSample):
        h, w = sample.input_shape
        factor = boxes.new_tensor([w, h, w, h])
        gt_boxes, gt_labels, _ = gt_of(sample, boxes.device)
        result = self.assigner.assign(cls, cxcywh_to_xyxy(boxes) * factor, gt_labels, gt_boxes, (h, w))
        pos = (result.gt_inds > 0).nonzero().squeeze(1)
        matched = result.gt_inds[pos] - 1
        labels = torch.full((len(boxes),), self.num_classes, dtype=torch.long, device=boxes.device)
        labels[pos] = gt_labels[matched]
        targets, weights = torch.zeros_like(boxes), torch.zeros_like(boxes)
        targets[pos] = xyxy_to_cxcywh(gt_boxes[matched] / factor)
        weights[pos] = 1.0
        return labels, targets, weights, factor.expand(len(boxes), 4)

    def losses(self, cls, boxes, labels, box_targets, box_weights, factors):
        num_pos = int((labels < self.num_classes).sum())
        num_neg = labels.numel() - num_pos
        cls_avg = torch.tensor(num_pos + num_neg * self.bg_cls_weight, dtype=torch.float32)
        cls_avg = float(reduce_mean(cls_avg)) if self.sync_cls_avg_factor else float(cls_avg)
        weight = None
        if not self.use_sigmoid:
            weight = torch.full_like(labels, self.class_weight, dtype=cls.dtype)
            weight[labels == self.num_classes] = self.bg_cls_weight
        loss_cls = self.loss_cls(cls, labels, weight, avg_factor=max(cls_avg, 1.0))
        avg = max(float(reduce_mean(torch.tensor(float(num_pos)))), 1.0)
        loss_iou = self.loss_iou(cxcywh_to_xyxy(boxes) * factors, cxcywh_to_xyxy(box_targets) * factors, box_weights,
                                 avg_factor=avg)
        return loss_cls, self.loss_bbox(boxes, box_targets, box_weights, avg_factor=avg), loss_iou

    def predict(self, hidden_states: torch.Tensor, samples: Sequence[DetSample], rescale: bool = True) -> list[Instances]:
        cls, boxes = self(hidden_states[-1:])
        return [self.predict_single(c, b, s, rescale) for c, b, s in zip(cls[-1], boxes[-1], samples)]

    def predict_single(self, cls: torch.Tensor, boxes: torch.Tensor, sample: DetSample, rescale: bool) -> Instances:
        k = min(self.max_per_img, cls.numel() if self.use_sigmoid else len(cls))
        if self.use_sigmoid:
            scores, index = cls.float().sigmoid().flatten().topk(k)
            labels, query = index % self.num_classes, index // self.num_classes
        else:
            scores, labels = cls.float().softmax(-1)[:, :-1].max(-1)
            scores, query = scores.topk(k)
            labels = labels[query]
        return decoded(boxes[query], scores, labels, sample, rescale)


def decoded(boxes: torch.Tensor, scores: torch.Tensor, labels: torch.Tensor, sample: DetSample,
            rescale: bool) -> Instances:
    """Normalised cxcywh -> xyxy pixels clipped to the image (then to the original image)."""
    h, w = sample.input_shape
    xyxy = cxcywh_to_xyxy(boxes.float()) * boxes.new_tensor([w, h, w, h]).float()
    xyxy = torch.stack([xyxy[:, 0].clamp(0, w), xyxy[:, 1].clamp(0, h), xyxy[:, 2].clamp(0, w),
                        xyxy[:, 3].clamp(0, h)], 1)
    if rescale:
        xyxy = sample.boxes_to_original(xyxy)
    return Instances(bboxes=xyxy, labels=labels, scores=scores)


def layer_losses(per_layer: list[tuple[torch.Tensor, ...]], names=("loss_cls", "loss_bbox", "loss_iou"),
                 prefix: str = "") -> dict[str, torch.Tensor]:
    """The last layer's losses as `loss_*`, the others as `d{i}.loss_*` (MMDetection's keys)."""
    out = {f"{prefix}{n}": v for n, v in zip(names, per_layer[-1])}
    for i, layer in enumerate(per_layer[:-1]):
        out.update({f"{prefix}d{i}.{n}": v for n, v in zip(names, layer)})
    return out


def build_head(cfg: dict, table: dict, train_cfg: dict | None, test_cfg: dict | None) -> nn.Module:
    """Build `bbox_head` and give it `train_cfg`/`test_cfg` (errors name their preset paths)."""
    head = build(cfg, table, "bbox_head")
    with at_path("train_cfg"):
        head.set_train_cfg(train_cfg)
    with at_path("test_cfg"):
        head.set_test_cfg(test_cfg)
    return head
