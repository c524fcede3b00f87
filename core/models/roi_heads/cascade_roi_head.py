"""Cascade R-CNN RoI head: box stages trained at rising IoU thresholds (0.5/0.6/0.7 in the
recipe), each stage's regressed boxes becoming the next stage's proposals; at test time the
stages' class logits are averaged and the last stage's boxes kept. Cascade Mask R-CNN adds a mask
head (and extractor) per stage, trained on that stage's positives with the stage's loss weight;
at test time the mask probabilities of all stages are averaged (MMDetection's predict_mask)."""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from det.core.config.build import at_path, build, config_path
from det.core.errors import ConfigError
from det.core.models.roi_heads.roi_extractor import boxes_to_rois
from det.core.models.roi_heads.standard_roi_head import (BBOX_HEADS, MASK_HEADS, ROI_EXTRACTORS, BaseRoIHead,
                                                           parse_rcnn_train_cfg, sample_rois)
from det.core.structures import DetSample, Instances


class CascadeRoIHead(BaseRoIHead):
    def __init__(self, num_stages: int, stage_loss_weights: Sequence[float], bbox_roi_extractor: dict | list,
                 bbox_head: list, mask_roi_extractor: dict | list | None = None, mask_head: dict | list | None = None,
                 train_cfg: list | None = None, test_cfg: dict | None = None) -> None:
        super().__init__()
        if len(stage_loss_weights) != num_stages:
            raise ConfigError(f"{config_path('stage_loss_weights')}: needs {num_stages} values")
        if not isinstance(bbox_head, (list, tuple)) or len(bbox_head) != num_stages:
            raise ConfigError(f"{config_path('bbox_head')}: needs a list of {num_stages} box heads")
        self.num_stages = num_stages
        self.stage_loss_weights = [float(w) for w in stage_loss_weights]
        self.bbox_roi_extractor = self._per_stage(bbox_roi_extractor, ROI_EXTRACTORS, "bbox_roi_extractor")
        self.bbox_head = nn.ModuleList(build(h, BBOX_HEADS, f"bbox_head.{i}") for i, h in enumerate(bbox_head))
        self.num_classes = self.bbox_head[0].num_classes
        self.mask_head = None if mask_head is None else self._per_stage(mask_head, MASK_HEADS, "mask_head")
        # no mask extractor of its own: the masks pool with the box extractors (MMDetection's sharing)
        self.mask_roi_extractor = None if mask_head is None or mask_roi_extractor is None else \
            self._per_stage(mask_roi_extractor, ROI_EXTRACTORS, "mask_roi_extractor")
        self.set_train_cfg(train_cfg)
        self.set_test_cfg(test_cfg)

    def _per_stage(self, cfg: dict | list, registry: dict, key: str) -> nn.ModuleList:
        """One module a stage: from a list of num_stages configs, or one config repeated."""
        if not isinstance(cfg, (list, tuple)):
            return nn.ModuleList(build(cfg, registry, key) for _ in range(self.num_stages))
        if len(cfg) != self.num_stages:
            raise ConfigError(f"{config_path(key)}: needs one entry or a list of {self.num_stages}")
        return nn.ModuleList(build(c, registry, f"{key}.{i}") for i, c in enumerate(cfg))

    def _mask_stage(self, i: int) -> tuple[nn.Module, nn.Module]:
        """(mask head, mask RoI extractor) of stage i."""
        extractors = self.bbox_roi_extractor if self.mask_roi_extractor is None else self.mask_roi_extractor
        return self.mask_head[i], extractors[i]

    def set_train_cfg(self, train_cfg: list | None) -> None:
        cfgs = train_cfg if train_cfg is not None else [None] * self.num_stages
        if not isinstance(cfgs, (list, tuple)) or len(cfgs) != self.num_stages:
            raise ConfigError(f"{config_path('')}: needs a list of {self.num_stages} stage settings")
        self.stage_train = []
        for i, cfg in enumerate(cfgs):
            with at_path(str(i)):
                self.stage_train.append(parse_rcnn_train_cfg(cfg))

    def forward(self, feats: Sequence[torch.Tensor], proposals: Sequence[torch.Tensor]) -> tuple:
        """Raw outputs of every stage on the same proposals (flop counting); mask heads on as many
        RoIs as test time keeps detections (`max_per_img`)."""
        rois = boxes_to_rois(proposals)
        out = tuple(h(e(feats[: e.num_inputs], rois)) for h, e in zip(self.bbox_head, self.bbox_roi_extractor))
        if not self.with_mask:
            return out
        return out + tuple(self.mask_forward(feats, rois[: self.test_cfg.max_per_img], *self._mask_stage(i))
                           for i in range(self.num_stages))

    def loss(self, feats: Sequence[torch.Tensor], proposals: Sequence[Instances],
             samples: Sequence[DetSample]) -> dict[str, torch.Tensor]:
        boxes = [p.bboxes for p in proposals]
        losses: dict[str, torch.Tensor] = {}
        for i in range(self.num_stages):
            _, assigner, sampler = self.stage_train[i]
            head, extractor = self.bbox_head[i], self.bbox_roi_extractor[i]
            sampled = [sample_rois(b, s, assigner, sampler, self.num_classes) for b, s in zip(boxes, samples)]
            stage_losses, _, cls_score, bbox_pred = self.bbox_loss(feats, sampled, head, extractor)
            if self.with_mask:
                stage_losses.update(self.mask_loss(feats, sampled, samples, *self._mask_stage(i),
                                                   train_cfg=self.stage_train[i][0]))
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

    def mask_probs(self, feats: Sequence[torch.Tensor], rois: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The mask probabilities of every stage's head, averaged."""
        probs = [head.class_logits(self.mask_forward(feats, rois, head, extractor), labels).sigmoid()
                 for head, extractor in map(self._mask_stage, range(self.num_stages))]
        return torch.stack(probs).mean(0)
