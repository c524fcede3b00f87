"""Deformable DETR's head: per-decoder-layer class and box branches (shared unless boxes are
refined), boxes predicted relative to each layer's reference points; with two stages, the
encoder's proposals get a class-agnostic loss (`enc_loss_*`)."""
from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import nn

from det.core.models.dense_heads.detr_head import DETRHead
from det.core.models.layers import bias_init_with_prob
from det.core.models.transformer.deformable_layers import inverse_sigmoid
from det.core.structures import DetSample, Instances

DEFORMABLE_ASSIGNER = {"type": "HungarianAssigner", "match_costs": [
    {"type": "FocalLossCost", "weight": 2.0}, {"type": "BBoxL1Cost", "weight": 5.0, "box_format": "xywh"},
    {"type": "IoUCost", "iou_mode": "giou", "weight": 2.0}]}


class DeformableDETRHead(DETRHead):
    def __init__(self, num_classes: int, embed_dims: int = 256, num_reg_fcs: int = 2, sync_cls_avg_factor: bool = True,
                 loss_cls: dict | None = None, loss_bbox: dict | None = None, loss_iou: dict | None = None,
                 share_pred_layer: bool = False, num_pred_layer: int = 6, as_two_stage: bool = False) -> None:
        self.share_pred_layer, self.num_pred_layer, self.as_two_stage = share_pred_layer, num_pred_layer, as_two_stage
        loss_cls = loss_cls or {"type": "FocalLoss", "use_sigmoid": True, "gamma": 2.0, "alpha": 0.25, "loss_weight": 2.0}
        super().__init__(num_classes, embed_dims, num_reg_fcs, sync_cls_avg_factor, loss_cls, loss_bbox, loss_iou)

    def _init_layers(self) -> None:
        fc_cls = nn.Linear(self.embed_dims, self.cls_out_channels)
        reg: list[nn.Module] = []
        for _ in range(self.num_reg_fcs):
            reg += [nn.Linear(self.embed_dims, self.embed_dims), nn.ReLU()]
        reg_branch = nn.Sequential(*reg, nn.Linear(self.embed_dims, 4))
        n = self.num_pred_layer
        if self.share_pred_layer:
            self.cls_branches = nn.ModuleList([fc_cls] * n)
            self.reg_branches = nn.ModuleList([reg_branch] * n)
        else:
            self.cls_branches = nn.ModuleList(copy.deepcopy(fc_cls) for _ in range(n))
            self.reg_branches = nn.ModuleList(copy.deepcopy(reg_branch) for _ in range(n))
        self._init_weights()

    def _init_weights(self) -> None:
        if self.use_sigmoid:
            for m in self.cls_branches:
                nn.init.constant_(m.bias, bias_init_with_prob(0.01))
        for m in self.reg_branches:
            nn.init.zeros_(m[-1].weight)
            nn.init.zeros_(m[-1].bias)
        nn.init.constant_(self.reg_branches[0][-1].bias.data[2:], 0.0 if self.as_two_stage else -2.0)

    def set_train_cfg(self, train_cfg: dict | None) -> None:
        super().set_train_cfg(train_cfg if train_cfg else {"assigner": DEFORMABLE_ASSIGNER})

    def forward(self, hidden_states: torch.Tensor, references: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        classes, coords = [], []
        for i in range(hidden_states.shape[0]):
            ref = inverse_sigmoid(references[i])
            delta = self.reg_branches[i](hidden_states[i])
            if ref.shape[-1] == 4:
                delta = delta + ref
            else:
                delta = torch.cat([delta[..., :2] + ref, delta[..., 2:]], -1)
            classes.append(self.cls_branches[i](hidden_states[i]))
            coords.append(delta.sigmoid())
        return torch.stack(classes), torch.stack(coords)

    def loss(self, hidden_states: torch.Tensor, references: list[torch.Tensor], samples: Sequence[DetSample],
             enc_outputs_class: torch.Tensor | None = None,
             enc_outputs_coord: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        losses = self.loss_by_feat(*self(hidden_states, references), samples)
        if enc_outputs_class is not None:
            enc = self.loss_single(enc_outputs_class, enc_outputs_coord, [class_agnostic(s) for s in samples])
            losses.update(dict(zip(("enc_loss_cls", "enc_loss_bbox", "enc_loss_iou"), enc)))
        return losses

    def predict(self, hidden_states: torch.Tensor, references: list[torch.Tensor], samples: Sequence[DetSample],
                rescale: bool = True, **_: torch.Tensor) -> list[Instances]:
        cls, boxes = self(hidden_states, references)
        return [self.predict_single(c, b, s, rescale) for c, b, s in zip(cls[-1], boxes[-1], samples)]


def class_agnostic(sample: DetSample) -> DetSample:
    """A shallow copy of `sample` whose objects all have label 0 (two-stage proposals)."""
    gt = copy.copy(sample.gt)
    gt.labels = torch.zeros_like(torch.as_tensor(gt.labels))
    out = copy.copy(sample)
    out.gt = gt
    return out
