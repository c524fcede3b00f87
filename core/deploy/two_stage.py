"""The exportable forward of a two-stage detector (Faster / Mask / Cascade R-CNN).

Inputs as the dense export (`images`, `image_sizes`); post-processing is always in the graph
(the proposals feed the RoI head). With static shapes:

- RPN: per level sigmoid objectness, top `nms_pre`, delta decoding clipped to the image; NMS per
  level is ONNX NonMaxSuppression over a one-hot (level x candidate) score matrix; the best
  `max_per_img` proposals are kept, empty slots padded (their RoIs are scored out below);
- RoIAlign: every RoI is pooled on every level and the level of its scale selected with a mask
  (the eager extractor's data-dependent indexing would trace as a constant); ONNX RoiAlign
  (torchvision's symbolic, opset >= 16) for ONNX / OpenVINO, det's compiled op in TorchScript;
- box head (cascade stages refine the RoIs and average their class scores), softmax, per-class
  decoding, then class-aware NMS with each class as one NonMaxSuppression batch item;
- masks (Mask R-CNN): the mask head's probabilities of each kept box's class as RoI masks
  (B, K, M, M); det pastes them into the original image (`paste_masks`), as the eager path does.
"""
from __future__ import annotations

import torch
from torch import nn

from det.core.deploy.graph import EMPTY, MultiClassNMS, nms_rows


def _nms(boxes: torch.Tensor, scores: torch.Tensor, iou: float, score_thr: float) -> torch.Tensor:
    """(S, 3) [batch, class, box] rows of NonMaxSuppression (ONNX) or det's NMS (PyTorch)."""
    fn = MultiClassNMS.apply if torch.onnx.is_in_onnx_export() else nms_rows
    return fn(boxes, scores, iou, score_thr)


def _top(values: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-k of `values` padded with k EMPTY slots (fewer than k candidates is no error)."""
    return torch.cat([values, values.new_full((k,), EMPTY)]).topk(k)


def roi_align(feat: torch.Tensor, rois: torch.Tensor, size: tuple[int, int], scale: float, ratio: int,
              aligned: bool) -> torch.Tensor:
    if torch.onnx.is_in_onnx_export():
        import torchvision

        return torchvision.ops.roi_align(feat, rois, size, scale, ratio, aligned)
    from det.ops import roi_align as det_roi_align

    return det_roi_align(feat, rois, size, scale, ratio, aligned)


def pool(extractor, feats, rois: torch.Tensor) -> torch.Tensor:
    """SingleRoIExtractor's output with static shapes: all levels pooled, one selected per RoI."""
    args = (extractor.output_size, extractor.sampling_ratio, extractor.aligned)
    if extractor.num_inputs == 1:
        return roi_align(feats[0], rois, args[0], 1.0 / extractor.featmap_strides[0], *args[1:])
    levels = extractor.map_roi_levels(rois)
    out = None
    for i in range(extractor.num_inputs):
        pooled = roi_align(feats[i], rois, args[0], 1.0 / extractor.featmap_strides[i], *args[1:])
        pooled = torch.where((levels == i)[:, None, None, None], pooled, pooled.new_zeros(()))
        out = pooled if out is None else out + pooled
    return out


class ExportedTwoStage(nn.Module):
    """A TwoStageDetector's trunk, RPN, RoI head and post-processing for tracing."""

    def __init__(self, model, imgsz: tuple[int, int]) -> None:
        super().__init__()
        self.model = model
        rpn = model.rpn_head
        strides = [s[0] if isinstance(s, (tuple, list)) else s for s in rpn.prior_generator.strides]
        sizes = [(-(-imgsz[0] // s), -(-imgsz[1] // s)) for s in strides]
        for i, p in enumerate(rpn.prior_generator.grid_priors(sizes, device=torch.device("cpu"))):
            self.register_buffer(f"priors{i}", p.float(), persistent=False)
        self.with_mask = bool(getattr(model.roi_head, "with_mask", False))

    def forward(self, images: torch.Tensor, image_sizes: torch.Tensor):
        feats = self.model.extract_feat(images)
        cls_scores, bbox_preds = self.model.rpn_head(feats)
        results = []
        for b in range(images.shape[0]):
            size = (image_sizes[b, 0], image_sizes[b, 1])
            proposals, valid = self._proposals([c[b] for c in cls_scores], [r[b] for r in bbox_preds], size)
            results.append(self._detect(feats, b, proposals, valid, size))
        return tuple(torch.stack(r) for r in zip(*results))

    def _proposals(self, cls_scores, bbox_preds, size) -> tuple[torch.Tensor, torch.Tensor]:
        """(max_per_img, 4) proposals and whether each slot holds one (RPNHead.predict_by_feat)."""
        rpn, cfg = self.model.rpn_head, self.model.rpn_head.test_cfg
        boxes, scores, levels = [], [], []
        for lvl, (c, r) in enumerate(zip(cls_scores, bbox_preds)):
            s = c.permute(1, 2, 0).reshape(-1).sigmoid()
            k = s.numel() if cfg.nms_pre <= 0 else min(cfg.nms_pre, s.numel())
            s, idx = s.topk(k)
            boxes.append(rpn.decode_level([c, r], getattr(self, f"priors{lvl}"), idx, lvl, size))
            scores.append(s)
            levels.append(torch.full((k,), lvl, dtype=torch.long))
        boxes, scores, levels = torch.cat(boxes).float(), torch.cat(scores).float(), torch.cat(levels)
        wh = boxes[:, 2:] - boxes[:, :2]
        ok = (wh[:, 0] > cfg.min_bbox_size) & (wh[:, 1] > cfg.min_bbox_size)
        if cfg.score_thr > 0:
            ok = ok & (scores >= cfg.score_thr)
        scores = torch.where(ok, scores, scores.new_tensor(EMPTY))
        onehot = levels[None, :] == torch.arange(len(cls_scores))[:, None]
        mat = torch.where(onehot, scores[None, :], scores.new_tensor(EMPTY))[None]
        sel = _nms(boxes[None], mat, float(cfg.iou_threshold), min(float(cfg.score_thr), 0.0) - 0.5)
        top, order = _top(mat[0, sel[:, 1], sel[:, 2]], cfg.max_per_img)
        box_idx = torch.cat([sel[:, 2], sel.new_zeros(cfg.max_per_img)])[order]
        valid = top > EMPTY
        return torch.where(valid[:, None], boxes[box_idx], boxes.new_zeros(())), valid

    def _detect(self, feats, b: int, proposals: torch.Tensor, valid: torch.Tensor, size):
        head = self.model.roi_head
        single = [f[b:b + 1] for f in feats]
        rois = torch.cat([proposals.new_zeros((proposals.shape[0], 1)), proposals], dim=1)
        cls_score, bbox_pred, rois, last = self._stages(single, rois, size)
        scores = cls_score.float().softmax(-1)[:, : head.num_classes]
        scores = torch.where(valid[:, None], scores, scores.new_tensor(EMPTY))
        boxes = last.decode(rois, bbox_pred, size).float()
        boxes, scores, labels = self._class_nms(boxes, scores, head.num_classes)
        if not self.with_mask:
            return boxes, scores, labels
        return boxes, scores, labels, self._masks(single, boxes, labels)

    def _stages(self, feats, rois: torch.Tensor, size):
        """Class logits (averaged over cascade stages), the last stage's deltas, RoIs and box head."""
        head = self.model.roi_head
        if not isinstance(head.bbox_head, nn.ModuleList):
            cls_score, bbox_pred = head.bbox_head(pool(head.bbox_roi_extractor, feats, rois))
            return cls_score, bbox_pred, rois, head.bbox_head
        logits = []
        for i, (box_head, extractor) in enumerate(zip(head.bbox_head, head.bbox_roi_extractor)):
            cls_score, bbox_pred = box_head(pool(extractor, feats, rois))
            logits.append(cls_score)
            if i < len(head.bbox_head) - 1:
                refined = box_head.regress_by_class(rois[:, 1:], cls_score[:, :-1].argmax(1), bbox_pred, size)
                rois = torch.cat([rois[:, :1], refined], dim=1)
        return sum(logits) / float(len(logits)), bbox_pred, rois, head.bbox_head[-1]

    def _class_nms(self, boxes: torch.Tensor, scores: torch.Tensor, num_classes: int):
        """multiclass_nms with static shapes: each class is a NonMaxSuppression batch item."""
        cfg = self.model.roi_head.test_cfg
        k = scores.shape[0]
        boxes = boxes.reshape(k, -1, 4).expand(k, num_classes, 4)
        if cfg.min_bbox_size > 0:
            wh = boxes[..., 2:] - boxes[..., :2]
            scores = torch.where((wh[..., 0] >= cfg.min_bbox_size) & (wh[..., 1] >= cfg.min_bbox_size),
                                 scores, scores.new_tensor(EMPTY))
        per_class = boxes.permute(1, 0, 2)  # (C, K, 4)
        mat = scores.t()[:, None, :]  # (C, 1, K)
        sel = _nms(per_class.contiguous(), mat.contiguous(), float(cfg.iou_threshold), float(cfg.score_thr))
        n = cfg.max_per_img
        top, order = _top(mat[sel[:, 0], 0, sel[:, 2]], n)
        cls = torch.cat([sel[:, 0], sel.new_full((n,), -1)])[order]
        box_idx = torch.cat([sel[:, 2], sel.new_zeros(n)])[order]
        valid = top > EMPTY
        out = per_class[cls.clamp(min=0), box_idx]
        return (torch.where(valid[:, None], out, out.new_zeros(())), torch.where(valid, top, top.new_zeros(())),
                torch.where(valid, cls, cls.new_full((), -1)))

    def _masks(self, feats, boxes: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """(K, M, M) mask probabilities of each kept box's class (zeros for empty slots); a cascade's
        stages averaged."""
        head = self.model.roi_head
        extractor = head.bbox_roi_extractor if head.mask_roi_extractor is None else head.mask_roi_extractor
        rois = torch.cat([boxes.new_zeros((boxes.shape[0], 1)), boxes], dim=1)
        if isinstance(head.mask_head, nn.ModuleList):
            pairs = list(zip(head.mask_head, extractor))
        else:
            pairs = [(head.mask_head, extractor)]
        probs = torch.stack([m.class_logits(m(pool(e, feats, rois)), labels.clamp(min=0)).sigmoid()
                             for m, e in pairs]).mean(0)
        return torch.where((labels >= 0)[:, None, None], probs, probs.new_zeros(()))
