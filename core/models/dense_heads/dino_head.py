"""DINO's head: Deformable DETR's head plus the denoising losses (`dn_loss_*`, each denoising
query targets the gt box it was made from; negatives target background) and an encoder loss
on the selected top-k proposals with their real classes."""
from __future__ import annotations

from collections.abc import Sequence

import torch

from det.core.models.dense_heads.base import gt_of
from det.core.models.dense_heads.deformable_detr_head import DeformableDETRHead
from det.core.models.dense_heads.detr_head import layer_losses
from det.core.structures import DetSample
from det.core.structures.boxes import xyxy_to_cxcywh


class DINOHead(DeformableDETRHead):
    def loss(self, hidden_states: torch.Tensor, references: list[torch.Tensor], samples: Sequence[DetSample],
             enc_outputs_class: torch.Tensor | None = None, enc_outputs_coord: torch.Tensor | None = None,
             dn_meta: dict | None = None) -> dict[str, torch.Tensor]:
        cls, boxes = self(hidden_states, references)
        n_dn = dn_meta["num_denoising_queries"] if dn_meta else 0
        losses = self.loss_by_feat(cls[:, :, n_dn:], boxes[:, :, n_dn:], samples)
        if enc_outputs_class is not None:
            enc = self.loss_single(enc_outputs_class, enc_outputs_coord, samples)
            losses.update(dict(zip(("enc_loss_cls", "enc_loss_bbox", "enc_loss_iou"), enc)))
        if dn_meta is not None:
            targets = self.dn_targets(samples, dn_meta, boxes.device)
            per_layer = [self.losses(c[:, :n_dn].flatten(0, 1), b[:, :n_dn].flatten(0, 1), *targets)
                         for c, b in zip(cls, boxes)]
            losses.update(layer_losses(per_layer, ("dn_loss_cls", "dn_loss_bbox", "dn_loss_iou")))
        return losses

    def dn_targets(self, samples: Sequence[DetSample], dn_meta: dict, device: torch.device):
        out = [self.dn_target_single(s, dn_meta, device) for s in samples]
        return tuple(torch.cat(t) for t in zip(*out))

    def dn_target_single(self, sample: DetSample, dn_meta: dict, device: torch.device):
        groups, n_dn = dn_meta["num_denoising_groups"], dn_meta["num_denoising_queries"]
        per_group = n_dn // groups
        gt_boxes, gt_labels, _ = gt_of(sample, device)
        t = torch.arange(len(gt_labels), device=device)[None].repeat(groups, 1)
        pos = (torch.arange(groups, device=device)[:, None] * per_group + t).flatten()
        matched = t.flatten()
        labels = torch.full((n_dn,), self.num_classes, dtype=torch.long, device=device)
        labels[pos] = gt_labels[matched]
        h, w = sample.input_shape
        factor = torch.tensor([w, h, w, h], dtype=torch.float32, device=device)
        targets, weights = torch.zeros(n_dn, 4, device=device), torch.zeros(n_dn, 4, device=device)
        targets[pos] = xyxy_to_cxcywh(gt_boxes / factor)[matched]
        weights[pos] = 1.0
        return labels, targets, weights, factor.expand(n_dn, 4)
