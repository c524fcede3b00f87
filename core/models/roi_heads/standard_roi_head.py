"""Standard RoI head (Faster / Mask R-CNN): per image, proposals are assigned to ground truth
(MaxIoU) and sampled (random, gt boxes added as proposals); RoIAlign features feed the box head
and, for positives, the mask head. At test time boxes are decoded per class, filtered by score,
NMS'ed per class and masks of the kept boxes pasted into the image."""
from __future__ import annotations

from abc import ABCMeta, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from det.core.config.build import build, check_keys, config_path
from det.core.errors import ConfigError, DataError
from det.core.models.dense_heads.base import NmsSettings, gt_of, run_nms
from det.core.models.roi_heads.bbox_head import Shared2FCBBoxHead
from det.core.models.roi_heads.mask_head import FCNMaskHead
from det.core.models.roi_heads.roi_extractor import SingleRoIExtractor, boxes_to_rois
from det.core.models.task import ASSIGNERS, SAMPLERS, AssignResult
from det.core.models.task.masks import mask_targets, paste_masks
from det.core.structures import DetSample, Instances

BBOX_HEADS = {"Shared2FCBBoxHead": Shared2FCBBoxHead}
MASK_HEADS = {"FCNMaskHead": FCNMaskHead}
ROI_EXTRACTORS = {"SingleRoIExtractor": SingleRoIExtractor}


@dataclass
class RCNNTestSettings(NmsSettings):
    """`test_cfg.rcnn`: score threshold, per-class NMS, detections per image, mask threshold;
    `min_bbox_size` drops boxes whose width or height is below it (torchvision's 1e-2)."""

    score_thr: float = 0.05
    max_per_img: int = 100
    mask_thr_binary: float = 0.5
    min_bbox_size: float = 0.0


@dataclass
class RoISamples:
    """Sampled RoIs of one image: priors (positives first), labels (num_classes = background),
    the gt index of each positive and whether a positive is a gt box added as a proposal."""

    priors: torch.Tensor
    labels: torch.Tensor
    pos_gt_boxes: torch.Tensor
    pos_gt_inds: torch.Tensor
    pos_is_gt: torch.Tensor

    @property
    def num_pos(self) -> int:
        return int(self.pos_gt_inds.numel())


def parse_rcnn_train_cfg(cfg: dict | None) -> tuple[dict, object, object]:
    """(cfg, assigner, sampler) of one `train_cfg.rcnn` entry."""
    from det.core.config.compat import drop_ignored

    cfg = check_keys(drop_ignored(cfg, "rcnn"), {"assigner", "sampler", "mask_size", "pos_weight"}, "")
    if cfg.get("pos_weight", -1) not in (-1, 1, 1.0):
        raise ConfigError(f"{config_path('pos_weight')}: det weighs every sampled RoI 1 (MMDetection's -1 or 1); "
                          f"got {cfg['pos_weight']!r}")
    assigner = build(cfg.get("assigner") or {"type": "MaxIoUAssigner", "pos_iou_thr": 0.5, "neg_iou_thr": 0.5,
                                             "min_pos_iou": 0.5, "match_low_quality": False},
                     ASSIGNERS, "assigner")
    sampler = build(cfg.get("sampler") or {"type": "RandomSampler", "num": 512, "pos_fraction": 0.25,
                                           "neg_pos_ub": -1, "add_gt_as_proposals": True}, SAMPLERS, "sampler")
    return cfg, assigner, sampler


def sample_rois(proposals: torch.Tensor, sample: DetSample, assigner, sampler, num_classes: int) -> RoISamples:
    """Assign the proposals of one image, prepend the gt boxes as positives of themselves
    (`add_gt_as_proposals`), then sample."""
    device = proposals.device
    boxes, labels, ignore = gt_of(sample, device)
    priors = proposals[:, :4].detach()
    assign = assigner.assign(priors, boxes, labels, gt_ignore=ignore)
    num_gts = boxes.size(0)
    add_gt = bool(getattr(sampler, "add_gt_as_proposals", False)) and num_gts > 0
    if add_gt:
        priors = torch.cat([boxes, priors])
        own = torch.arange(1, num_gts + 1, device=device)
        assign = AssignResult(num_gts, torch.cat([own, assign.gt_inds]),
                              torch.cat([assign.max_overlaps.new_ones(num_gts), assign.max_overlaps]),
                              torch.cat([labels, assign.labels]))
    res = sampler.sample(assign, boxes, labels)
    inds = torch.cat([res.pos_inds, res.neg_inds])
    out_labels = torch.full((inds.numel(),), num_classes, dtype=torch.long, device=device)
    out_labels[: res.num_pos] = res.pos_gt_labels
    pos_is_gt = res.pos_inds < num_gts if add_gt else torch.zeros_like(res.pos_inds, dtype=torch.bool)
    return RoISamples(priors[inds], out_labels, res.pos_gt_bboxes, res.pos_assigned_gt_inds, pos_is_gt)


def gt_masks_of(sample: DetSample, device: torch.device) -> torch.Tensor:
    """Non-ignored gt masks (G, H, W) of one sample, in the order of `gt_of`'s boxes."""
    masks = sample.gt.masks
    if masks is None:
        raise DataError(f"{sample.img_path or 'a training image'}: a mask head needs instance masks "
                        "(LoadAnnotations with with_mask: true)")
    if not isinstance(masks, torch.Tensor):
        masks = torch.as_tensor(masks.to_ndarray() if hasattr(masks, "to_ndarray") else masks)
    masks = masks.to(device)
    if sample.gt.ignore is not None and len(sample.gt.ignore):
        masks = masks[~sample.gt.ignore.to(device=device, dtype=torch.bool)]
    return masks


def multiclass_nms(boxes: torch.Tensor, scores: torch.Tensor, cfg: RCNNTestSettings,
                   num_classes: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """boxes (K, C*4) or (K, 4), scores (K, C+1) -> (boxes, scores, labels) after score
    threshold, optional size filter, per-class NMS and `max_per_img` (sorted by score)."""
    k = scores.size(0)
    boxes = boxes.view(k, -1, 4).expand(k, num_classes, 4) if boxes.size(1) == 4 else boxes.view(k, num_classes, 4)
    scores = scores[:, :num_classes]
    labels = torch.arange(num_classes, device=scores.device).expand(k, num_classes)
    boxes, scores, labels = boxes.reshape(-1, 4), scores.reshape(-1), labels.reshape(-1)
    keep = scores > cfg.score_thr
    if cfg.min_bbox_size > 0:
        wh = boxes[:, 2:] - boxes[:, :2]
        keep &= (wh[:, 0] >= cfg.min_bbox_size) & (wh[:, 1] >= cfg.min_bbox_size)
    boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
    if boxes.numel():
        idx, scores = run_nms(boxes, scores, labels, cfg, cfg.max_per_img)
        boxes, labels = boxes[idx], labels[idx]
    return boxes, scores, labels


class BaseRoIHead(nn.Module, metaclass=ABCMeta):
    """What RoI heads share (standard and cascade are siblings below it): box/mask forward on
    RoIs, box and mask losses of sampled RoIs, post-processing and mask prediction. A subclass
    builds its extractors and heads (setting `mask_head` and `mask_roi_extractor`, None when
    absent) and implements `set_train_cfg`, `loss` and `predict`."""

    @abstractmethod
    def set_train_cfg(self, train_cfg: object) -> None:
        """Parse `train_cfg.rcnn` (one mapping, or one per stage)."""

    @abstractmethod
    def loss(self, feats: Sequence[torch.Tensor], proposals: Sequence[Instances],
             samples: Sequence[DetSample]) -> dict[str, torch.Tensor]:
        """Losses of the sampled proposals."""

    @abstractmethod
    def predict(self, feats: Sequence[torch.Tensor], proposals: Sequence[Instances], samples: Sequence[DetSample],
                rescale: bool = True) -> list[Instances]:
        """Detections per image."""

    @property
    def with_mask(self) -> bool:
        return self.mask_head is not None

    def set_test_cfg(self, test_cfg: dict | None) -> None:
        self.test_cfg = RCNNTestSettings.parse(test_cfg)

    # -- shared ----------------------------------------------------------------------------
    def bbox_forward(self, feats: Sequence[torch.Tensor], rois: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pooled = self.bbox_roi_extractor(feats[: self.bbox_roi_extractor.num_inputs], rois)
        return self.bbox_head(pooled)

    def mask_forward(self, feats: Sequence[torch.Tensor], rois: torch.Tensor, head: nn.Module | None = None,
                     extractor: nn.Module | None = None) -> torch.Tensor:
        """Mask logits of `rois` (by default this head's mask head and extractor)."""
        head = self.mask_head if head is None else head
        if extractor is None:
            extractor = self.bbox_roi_extractor if self.mask_roi_extractor is None else self.mask_roi_extractor
        return head(extractor(feats[: extractor.num_inputs], rois))

    def mask_probs(self, feats: Sequence[torch.Tensor], rois: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """(K, M, M) mask probabilities of each RoI's class."""
        return self.mask_head.class_logits(self.mask_forward(feats, rois), labels).sigmoid()

    def bbox_loss(self, feats: Sequence[torch.Tensor], sampled: Sequence[RoISamples], head: nn.Module | None = None,
                  extractor: nn.Module | None = None) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor,
                                                               torch.Tensor]:
        """Box losses of the sampled RoIs; also returns (rois, cls_score, bbox_pred)."""
        head = head or self.bbox_head
        extractor = extractor or self.bbox_roi_extractor
        rois = boxes_to_rois([s.priors for s in sampled])
        cls_score, bbox_pred = head(extractor(feats[: extractor.num_inputs], rois))
        labels = torch.cat([s.labels for s in sampled])
        targets = torch.zeros((labels.numel(), 4), device=rois.device)
        start = 0
        for s in sampled:
            if s.num_pos:
                pos_priors = s.priors[: s.num_pos]
                targets[start:start + s.num_pos] = s.pos_gt_boxes if head.reg_decoded_bbox else \
                    head.bbox_coder.encode(pos_priors, s.pos_gt_boxes)
            start += s.labels.numel()
        return head.loss(cls_score, bbox_pred, rois, labels, targets), rois, cls_score, bbox_pred

    def mask_loss(self, feats: Sequence[torch.Tensor], sampled: Sequence[RoISamples], samples: Sequence[DetSample],
                  head: nn.Module | None = None, extractor: nn.Module | None = None,
                  train_cfg: dict | None = None) -> dict[str, torch.Tensor]:
        """Mask loss of the positives of `sampled` (by default with this head's mask head,
        extractor and `train_cfg`; a cascade passes a stage's)."""
        head = self.mask_head if head is None else head
        train_cfg = self.train_cfg if train_cfg is None else train_cfg
        pos_rois = boxes_to_rois([s.priors[: s.num_pos] for s in sampled])
        logits = self.mask_forward(feats, pos_rois, head, extractor)
        size = int(train_cfg.get("mask_size", head.mask_size))
        if size != logits.size(-1):
            raise ConfigError(f"{config_path('mask_size')}: {size} but the mask head predicts {logits.size(-1)} px")
        targets = [mask_targets(gt_masks_of(smp, pos_rois.device), s.priors[: s.num_pos], s.pos_gt_inds, size)
                   for s, smp in zip(sampled, samples)]
        labels = torch.cat([s.labels[: s.num_pos] for s in sampled])
        return head.loss(logits, labels, torch.cat(targets))

    # -- inference -------------------------------------------------------------------------
    def finish(self, feats: Sequence[torch.Tensor], rois: Sequence[torch.Tensor], cls_scores: Sequence[torch.Tensor],
               bbox_preds: Sequence[torch.Tensor], samples: Sequence[DetSample], rescale: bool,
               head: nn.Module) -> list[Instances]:
        """Per image: decode, NMS, masks, map to the original image."""
        results = []
        for r, c, b, sample in zip(rois, cls_scores, bbox_preds, samples):
            img_shape = sample.input_shape
            scores = F.softmax(c.float(), dim=-1)
            boxes = head.decode(r, b, img_shape)
            boxes, scores, labels = multiclass_nms(boxes, scores, self.test_cfg, self.num_classes)
            results.append(Instances(bboxes=boxes.float(), labels=labels, scores=scores.float()))
        if self.with_mask:
            self.predict_masks(feats, results, samples, rescale)
        if rescale:
            for res, sample in zip(results, samples):
                res.bboxes = sample.boxes_to_original(res.bboxes)
        return results

    def predict_masks(self, feats: Sequence[torch.Tensor], results: list[Instances], samples: Sequence[DetSample],
                      rescale: bool) -> None:
        """Adds (N, H, W) bool masks (original image size when `rescale`) to each result."""
        rois = boxes_to_rois([r.bboxes for r in results])
        probs = self.mask_probs(feats, rois, torch.cat([r.labels for r in results])).split([len(r) for r in results])
        for res, p, sample in zip(results, probs, samples):
            if rescale:
                boxes = sample.boxes_to_original(res.bboxes)
                h, w = sample.output_shape()
                p = sample.unflip_maps(p)
            else:
                boxes = res.bboxes
                h, w = sample.input_shape
            res.masks = paste_masks(p, boxes, h, w, self.test_cfg.mask_thr_binary)


class StandardRoIHead(BaseRoIHead):
    def __init__(self, bbox_roi_extractor: dict, bbox_head: dict, mask_roi_extractor: dict | None = None,
                 mask_head: dict | None = None, share_roi_extractor: bool = False,
                 train_cfg: dict | None = None, test_cfg: dict | None = None) -> None:
        super().__init__()
        self.bbox_roi_extractor = build(bbox_roi_extractor, ROI_EXTRACTORS, "bbox_roi_extractor")
        self.bbox_head = build(bbox_head, BBOX_HEADS, "bbox_head")
        self.num_classes = self.bbox_head.num_classes
        self.mask_head = build(mask_head, MASK_HEADS, "mask_head") if mask_head is not None else None
        self.mask_roi_extractor = None
        if self.mask_head is not None:
            if share_roi_extractor or mask_roi_extractor is None:
                self.share_roi_extractor = True
            else:
                self.share_roi_extractor = False
                self.mask_roi_extractor = build(mask_roi_extractor, ROI_EXTRACTORS, "mask_roi_extractor")
        self.set_train_cfg(train_cfg)
        self.set_test_cfg(test_cfg)

    def set_train_cfg(self, train_cfg: dict | None) -> None:
        self.train_cfg, self.assigner, self.sampler = parse_rcnn_train_cfg(train_cfg)

    def forward(self, feats: Sequence[torch.Tensor], proposals: Sequence[torch.Tensor]) -> tuple:
        """Raw outputs for proposal boxes per image (flop counting, benchmarks); the mask head
        runs on as many RoIs as test time keeps detections (`max_per_img`)."""
        rois = boxes_to_rois(proposals)
        out = self.bbox_forward(feats, rois)
        return out + (self.mask_forward(feats, rois[: self.test_cfg.max_per_img]),) if self.with_mask else out

    # -- training --------------------------------------------------------------------------
    def loss(self, feats: Sequence[torch.Tensor], proposals: Sequence[Instances],
             samples: Sequence[DetSample]) -> dict[str, torch.Tensor]:
        sampled = [sample_rois(p.bboxes, s, self.assigner, self.sampler, self.num_classes)
                   for p, s in zip(proposals, samples)]
        losses = self.bbox_loss(feats, sampled)[0]
        if self.with_mask:
            losses.update(self.mask_loss(feats, sampled, samples))
        return losses

    def predict(self, feats: Sequence[torch.Tensor], proposals: Sequence[Instances], samples: Sequence[DetSample],
                rescale: bool = True) -> list[Instances]:
        rois = boxes_to_rois([p.bboxes for p in proposals])
        cls_score, bbox_pred = self.bbox_forward(feats, rois)
        counts = [len(p) for p in proposals]
        return self.finish(feats, rois.split(counts), cls_score.split(counts), bbox_pred.split(counts),
                           samples, rescale, self.bbox_head)
