"""Cascade R-CNN RoI head: box stages trained at rising IoU thresholds (0.5/0.6/0.7 in the
recipe), each stage's regressed boxes becoming the next stage's proposals; at test time the
stages' class logits are averaged and the last stage's boxes kept."""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from det.core.config.build import at_path, build, config_path
from det.core.errors import ConfigError
from det.core.models.roi_heads.roi_extractor import boxes_to_rois
from det.core.models.roi_heads.standard_roi_head import (BBOX_HEADS, ROI_EXTRACTORS, BaseRoIHead,
                                                           parse_rcnn_train_cfg, sample_rois)
from det.core.structures import DetSample, Instances


class CascadeRoIHead(BaseRoIHead):
    def __init__(self, num_stages: int, stage_loss_weights: Sequence[float], bbox_roi_extractor: dict | list,
                 bbox_head: list, train_cfg: list | None = None, test_cfg: dict | None = None) -> None:
        super().__init__()
        if len(stage_loss_weights) != num_stages:
            raise ConfigError(f"{config_path('stage_loss_weights')}: needs {num_stages} values")
        if not isinstance(bbox_head, (list, tuple)) or len(bbox_head) != num_stages:
            raise ConfigError(f"{config_path('bbox_head')}: needs a list of {num_stages} box heads")
        extractors = bbox_roi_extractor if isinstance(bbox_roi_extractor, (list, tuple)) else \
            [bbox_roi_extractor] * num_stages
        self.num_stages = num_stages
        self.stage_loss_weights = [float(w) for w in stage_loss_weights]
        self.bbox_roi_extractor = nn.ModuleList(
            build(e, ROI_EXTRACTORS, f"bbox_roi_extractor.{i}" if isinstance(bbox_roi_extractor, list)
                  else "bbox_roi_extractor") for i, e in enumerate(extractors))
        self.bbox_head = nn.ModuleList(build(h, BBOX_HEADS, f"bbox_head.{i}") for i, h in enumerate(bbox_head))
        self.num_classes = self.bbox_head[0].num_classes
        self.mask_head = None
        self.mask_roi_extractor = None
        self.set_train_cfg(train_cfg)
        self.set_test_cfg(test_cfg)

    def set_train_cfg(self, train_cfg: list | None) -> None:
        cfgs = train_cfg if train_cfg is not None else [None] * self.num_stages
        if not isinstance(cfgs, (list, tuple)) or len(cfgs) != self.num_stages:
            raise ConfigError(f"{config_path('')}: needs a list of {self.num_stages} stage settings")
        self.stage_train = []
        for i, cfg in enumerate(cfgs):
            with at_path(str(i)):
                self.stage_train.append(parse_rcnn_train_cfg(cfg))

    def forward(self, feats: Sequence[torch.Tensor], proposals: Sequence[torch.Tensor]) -> tuple:
        rois = boxes_to_rois(proposals)
        return tuple(h(e(feats[: e.num_inputs], rois)) for h, e in zip(self.bbox_head, self.bbox_roi_extractor))

    def loss(self, feats: Sequence[torch.Tensor], proposals: Sequence[Instances],
             samples: Sequence[DetSample]) -> dict[str, torch.Tensor]:
        boxes = [p.bboxes for p in proposals]
        losses: dict[str, torch.Tensor] = {}
        for i in range(self.num_stages):
            _, assigner, sampler = self.stage_train[i]
            head, extractor = self.bbox_head[i], self.bbox_roi_extractor[i]
            sampled = [sample_rois(b, s, assigner, sampler, self.num_classes) for b, s in zip(boxes, samples)]
            stage_losses, _, cls_score, bbox_pred = self.bbox_loss(feats, sampled, head, extractor)
            for key, value in stage_losses.items():
                losses[f"{key}_s{i}"] = value * self.stage_loss_weights[i]
            if i < self.num_stages - 1:
                boxes = self._refine(sampled, cls_score.detach(), bbox_pred.detach(), samples, head)
        return losses

    def _refine(self, sampled: Sequence, cls_score: torch.Tensor, bbox_pred: torch.Tensor,
                samples: Sequence[DetSample], head: nn.Module) -> list[torch.Tensor]:
        """Next-stage proposals: the sampled RoIs moved by their regression (negatives by the
        predicted class), gt boxes added as proposals left out."""
        out, start = [], 0
        for s, sample in zip(sampled, samples):
            n = s.labels.numel()
            labels = s.labels.clone()
            bg = labels == self.num_classes
            labels[bg] = cls_score[start:start + n, :-1].argmax(1)[bg]
            refined = head.regress_by_class(s.priors, labels, bbox_pred[start:start + n], sample.input_shape)
            keep = torch.ones(n, dtype=torch.bool, device=refined.device)
            keep[: s.num_pos] = ~s.pos_is_gt
            out.append(refined[keep])
            start += n
        return out

    def predict(self, feats: Sequence[torch.Tensor], proposals: Sequence[Instances], samples: Sequence[DetSample],
                rescale: bool = True) -> list[Instances]:
        counts = [len(p) for p in proposals]
        rois = boxes_to_rois([p.bboxes for p in proposals])
        ms_scores = []
        bbox_pred = rois.new_zeros((0, 4))
        for i in range(self.num_stages):
            head, extractor = self.bbox_head[i], self.bbox_roi_extractor[i]
            cls_score, bbox_pred = head(extractor(feats[: extractor.num_inputs], rois))
            ms_scores.append(cls_score)
            if i < self.num_stages - 1:
                refined = []
                for r, c, b, sample in zip(rois.split(counts), cls_score.split(counts), bbox_pred.split(counts),
                                           samples):
                    boxes = head.regress_by_class(r[:, 1:], c[:, :-1].argmax(1), b, sample.input_shape)
                    refined.append(torch.cat([r[:, :1], boxes], dim=1))
                rois = torch.cat(refined) if refined else rois
        cls_score = sum(ms_scores) / float(self.num_stages)
        return self.finish(feats, rois.split(counts), cls_score.split(counts), bbox_pred.split(counts), samples,
                           rescale, self.bbox_head[-1])
