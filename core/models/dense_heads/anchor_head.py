"""The anchor-head base: heads that place anchors on every feature level and train on the
targets of an assigner, a sampler and a box coder (RetinaNet, the RPN). It owns the anchor
targets; subclasses add their layers, `forward`, `loss_by_feat` and `decode_level`."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from det.core.models.dense_heads.base import DenseHead, gt_of
from det.core.structures import DetSample


class AnchorHead(DenseHead):
    """A DenseHead with `prior_generator` (anchors), `assigner`, `sampler` and `bbox_coder`;
    `train_cfg` may also set `allowed_border` (anchors crossing the image edge by more are not
    trained; < 0: all valid anchors) and `pos_weight` (label weight of positives; <= 0 means 1)."""

    train_keys = frozenset({"allowed_border", "pos_weight"})

    def anchor_targets(self, cls_scores: Sequence[torch.Tensor], samples: Sequence[DetSample],
                       class_agnostic: bool = False, reg_decoded_bbox: bool = False):
        """(anchors, labels, label weights, regression targets, positive mask) of a batch."""
        return anchor_targets(self, cls_scores, samples, class_agnostic, reg_decoded_bbox)

    def decode_level(self, outs: list[torch.Tensor], priors: torch.Tensor, prior_idx: torch.Tensor, level: int,
                     img_shape: tuple[int, int]) -> torch.Tensor:
        """Boxes of the kept anchors of one level: their deltas (outs[1]) decoded by the coder."""
        reg = outs[1].permute(1, 2, 0).reshape(-1, 4)[prior_idx]
        return self.bbox_coder.decode(priors[prior_idx], reg, max_shape=img_shape)


def inside_flags(anchors: torch.Tensor, valid: torch.Tensor, img_shape: tuple[int, int],
                 allowed_border: float) -> torch.Tensor:
    """Valid anchors lying within the image plus `allowed_border` (all valid ones when < 0)."""
    if allowed_border < 0:
        return valid
    h, w = img_shape
    return valid & (anchors[:, 0] >= -allowed_border) & (anchors[:, 1] >= -allowed_border) & \
        (anchors[:, 2] < w + allowed_border) & (anchors[:, 3] < h + allowed_border)


def _image_anchor_targets(head: Any, anchors: torch.Tensor, level_ids: torch.Tensor, valid: torch.Tensor,
                          sample: DetSample, num_classes: int, class_agnostic: bool, reg_decoded_bbox: bool):
    """One image: per-anchor labels (`num_classes` = background), label weights, regression
    targets and the positive mask, from the head's assigner, sampler and box coder. Level-aware
    assigners (ATSS) get the number of usable anchors on each level."""
    n, device = anchors.size(0), anchors.device
    boxes, labels, ignore = gt_of(sample, device)
    if class_agnostic:
        labels = torch.zeros_like(labels)
    inside = inside_flags(anchors, valid, sample.input_shape, head.train_cfg.get("allowed_border", -1))
    idx = inside.nonzero().squeeze(1)
    num_level_priors = torch.bincount(level_ids[inside], minlength=head.prior_generator.num_levels).tolist()
    assign = head.assigner.assign(anchors[idx], boxes, labels, gt_ignore=ignore, num_level_priors=num_level_priors)
    res = head.sampler.sample(assign, boxes, labels)
    out_labels = torch.full((n,), num_classes, dtype=torch.long, device=device)
    label_w = torch.zeros(n, device=device)
    targets = torch.zeros((n, 4), device=device)
    pos, neg = idx[res.pos_inds], idx[res.neg_inds]
    if pos.numel():
        targets[pos] = res.pos_gt_bboxes if reg_decoded_bbox else head.bbox_coder.encode(anchors[pos], res.pos_gt_bboxes)
        out_labels[pos] = res.pos_gt_labels
        pw = head.train_cfg.get("pos_weight", -1)
        label_w[pos] = 1.0 if pw <= 0 else float(pw)
    label_w[neg] = 1.0
    pos_mask = torch.zeros(n, dtype=torch.bool, device=device)
    pos_mask[pos] = True
    return out_labels, label_w, targets, pos_mask


def anchor_targets(head: Any, cls_scores: Sequence[torch.Tensor], samples: Sequence[DetSample],
                   class_agnostic: bool = False, reg_decoded_bbox: bool = False):
    """Anchor-based training targets for a batch (RetinaNet, RPN): the anchors of one image and
    the labels, label weights, regression targets and positive mask of all images
    concatenated. `class_agnostic` (RPN) assigns every box to class 0, background 1."""
    sizes = [tuple(c.shape[-2:]) for c in cls_scores]
    device = cls_scores[0].device
    level_anchors = head.prior_generator.grid_priors(sizes, device=device)
    anchors = torch.cat(level_anchors)
    level_ids = torch.cat([torch.full((a.size(0),), i, dtype=torch.long, device=device)
                           for i, a in enumerate(level_anchors)])
    num_classes = 1 if class_agnostic else head.num_classes
    per_img = []
    for s in samples:
        valid = torch.cat(head.prior_generator.valid_flags(sizes, s.valid_shape, device))
        per_img.append(_image_anchor_targets(head, anchors, level_ids, valid, s, num_classes, class_agnostic,
                                             reg_decoded_bbox))
    labels, label_w, targets, pos = (torch.cat(t) for t in zip(*per_img))
    return anchors, labels, label_w, targets, pos
