"""Box heads on pooled RoI features: shared fully connected layers, a softmax classifier
over num_classes + background (last index) and class-specific or agnostic box deltas."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from det.core.config.build import build
from det.core.models.losses import LOSSES
from det.core.models.task import CODERS


class Shared2FCBBoxHead(nn.Module):
    """MMDetection's Shared2FCBBoxHead (`shared_fcs.0/1`, `fc_cls`, `fc_reg`)."""

    def __init__(self, num_classes: int, in_channels: int = 256, fc_out_channels: int = 1024, roi_feat_size: int = 7,
                 num_shared_fcs: int = 2, bbox_coder: dict | None = None, reg_class_agnostic: bool = False,
                 reg_decoded_bbox: bool = False, loss_cls: dict | None = None, loss_bbox: dict | None = None) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.reg_class_agnostic = reg_class_agnostic
        self.reg_decoded_bbox = reg_decoded_bbox
        self.bbox_coder = build(bbox_coder or {"type": "DeltaXYWHBBoxCoder", "target_stds": [0.1, 0.1, 0.2, 0.2]},
                                CODERS, "bbox_coder")
        self.loss_cls = build(loss_cls or {"type": "CrossEntropyLoss", "loss_weight": 1.0}, LOSSES, "loss_cls")
        self.loss_bbox = build(loss_bbox or {"type": "L1Loss", "loss_weight": 1.0}, LOSSES, "loss_bbox")
        fh, fw = (roi_feat_size, roi_feat_size) if isinstance(roi_feat_size, int) else roi_feat_size
        flat = in_channels * int(fh) * int(fw)
        self.shared_fcs = nn.ModuleList(
            nn.Linear(flat if i == 0 else fc_out_channels, fc_out_channels) for i in range(num_shared_fcs))
        last = fc_out_channels if num_shared_fcs else flat
        self.fc_cls = nn.Linear(last, num_classes + 1)
        self.fc_reg = nn.Linear(last, 4 if reg_class_agnostic else 4 * num_classes)
        for fc in self.shared_fcs:
            nn.init.xavier_uniform_(fc.weight)
            nn.init.zeros_(fc.bias)
        nn.init.normal_(self.fc_cls.weight, 0, 0.01)
        nn.init.zeros_(self.fc_cls.bias)
        nn.init.normal_(self.fc_reg.weight, 0, 0.001)
        nn.init.zeros_(self.fc_reg.bias)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = x.flatten(1)
        for fc in self.shared_fcs:
            x = F.relu(fc(x))
        return self.fc_cls(x), self.fc_reg(x)

    def class_deltas(self, bbox_pred: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """(K, 4) deltas of each RoI's class (the only ones when class-agnostic)."""
        if self.reg_class_agnostic:
            return bbox_pred.view(-1, 4)
        return bbox_pred.view(bbox_pred.size(0), -1, 4)[torch.arange(bbox_pred.size(0), device=bbox_pred.device),
                                                        labels.clamp(max=self.num_classes - 1)]

    def loss(self, cls_score: torch.Tensor, bbox_pred: torch.Tensor, rois: torch.Tensor, labels: torch.Tensor,
             targets: torch.Tensor) -> dict[str, torch.Tensor]:
        """Cross-entropy over all sampled RoIs; box loss over positives averaged over all
        sampled RoIs (MMDetection's normalisation). `targets` are encoded deltas (or boxes
        with `reg_decoded_bbox`), rows of negatives ignored."""
        num = max(labels.numel(), 1)
        loss_cls = self.loss_cls(cls_score, labels, avg_factor=float(num))
        pos = (labels >= 0) & (labels < self.num_classes)
        if pos.any():
            deltas = self.class_deltas(bbox_pred[pos], labels[pos])
            if self.reg_decoded_bbox:
                deltas = self.bbox_coder.decode(rois[pos, 1:], deltas)
            loss_bbox = self.loss_bbox(deltas, targets[pos], avg_factor=float(num))
        else:
            loss_bbox = bbox_pred.sum() * 0
        return {"loss_cls": loss_cls, "loss_bbox": loss_bbox}

    def decode(self, rois: torch.Tensor, bbox_pred: torch.Tensor, img_shape: tuple[int, int]) -> torch.Tensor:
        """(K, C*4) or (K, 4) boxes for the RoIs (K, 5) of one image."""
        k = rois.size(0)
        if self.reg_class_agnostic:
            return self.bbox_coder.decode(rois[:, 1:], bbox_pred, max_shape=img_shape)
        deltas = bbox_pred.view(k, -1, 4)
        priors = rois[:, None, 1:].expand(k, deltas.size(1), 4)
        return self.bbox_coder.decode(priors, deltas, max_shape=img_shape).view(k, -1)

    def regress_by_class(self, boxes: torch.Tensor, labels: torch.Tensor, bbox_pred: torch.Tensor,
                         img_shape: tuple[int, int]) -> torch.Tensor:
        """Boxes (K, 4) moved by the deltas of `labels` (cascade refinement)."""
        return self.bbox_coder.decode(boxes, self.class_deltas(bbox_pred, labels), max_shape=img_shape)
