"""The exportable forward of a single-stage detector.

Input `images` is the normalised float batch the data preprocessor makes (B, 3, H, W);
with post-processing in the graph a second input `image_sizes` (B, 2) holds each resized
image's (h, w) inside the padded input, which is where boxes are clipped. Outputs:

- nms=True:  boxes (B, K, 4) xyxy in input-image pixels, scores (B, K), labels (B, K) int64,
  K = test_cfg.max_per_img; unused slots have score 0 and label -1;
- nms=False: the head's raw per-level maps, named out{group}_l{level}, which det decodes with
  the head's own `predict_by_feat`.

The post-processing mirrors `DenseHead._predict_single` with static shapes and gives the same
detections: per level, the (prior, class) candidates above score_thr and among the nms_pre best
become a (priors, classes) score matrix (the rest EMPTY) over every prior's decoded box, so the
class-aware NMS (ONNX NonMaxSuppression) runs on one box per prior rather than one per candidate;
it stops after max_per_img boxes per class, which keeps every box the final top-K can pick.
A candidate tied with the nms_pre-th best score is kept with it (top-k would pick one of them).
"""
from __future__ import annotations

import torch
from torch import nn

from det.core.models.detectors.single_stage import SingleStageDetector

EMPTY = -1.0  # score of a candidate that was thresholded away
ALL = 1 << 30  # NonMaxSuppression's max_output_boxes_per_class when every kept box is wanted


class MultiClassNMS(torch.autograd.Function):
    """Per-class NMS over (1, C, N) scores -> (S, 3) [batch, class, box] rows, the contract of
    ONNX NonMaxSuppression; in PyTorch (and TorchScript traces) it runs det's compiled NMS."""

    @staticmethod
    def forward(ctx, boxes: torch.Tensor, scores: torch.Tensor, iou: float, score_thr: float,
                max_per_class: int = ALL) -> torch.Tensor:
        return nms_rows(boxes, scores, iou, score_thr, max_per_class)

    @staticmethod
    def symbolic(g, boxes, scores, iou: float, score_thr: float, max_per_class: int = ALL):
        n = g.op("Constant", value_t=torch.tensor([max_per_class], dtype=torch.int64))
        return g.op("NonMaxSuppression", boxes, scores, n, g.op("Constant", value_t=torch.tensor([iou])),
                    g.op("Constant", value_t=torch.tensor([score_thr])))


def nms_rows(boxes: torch.Tensor, scores: torch.Tensor, iou: float, score_thr: float,
             max_per_class: int = ALL) -> torch.Tensor:
    """MultiClassNMS in plain PyTorch (what a TorchScript trace records): boxes (B, N, 4),
    scores (B, C, N); at most `max_per_class` rows per (image, class), the best first."""
    from det.ops import nms

    rows = []
    for b in range(scores.shape[0]):
        for c in range(scores.shape[1]):
            idx = (scores[b, c] > score_thr).nonzero().squeeze(1)
            keep = idx[nms(boxes[b, idx], scores[b, c, idx], iou)][:max_per_class]
            rows.append(torch.stack([torch.full_like(keep, b), torch.full_like(keep, c), keep], dim=1))
    return torch.cat(rows).long()


class ExportedDense(nn.Module):
    """A SingleStageDetector's trunk + head (+ static post-processing) for tracing."""

    def __init__(self, model: SingleStageDetector, imgsz: tuple[int, int], nms: bool) -> None:
        super().__init__()
        self.model, self.nms = model, nms
        head = model.bbox_head
        strides = [s[0] if isinstance(s, (tuple, list)) else s for s in head.prior_generator.strides]
        self.featmap_sizes = [(-(-imgsz[0] // s), -(-imgsz[1] // s)) for s in strides]
        for i, p in enumerate(head.level_priors(self.featmap_sizes, torch.float32, torch.device("cpu"))):
            self.register_buffer(f"priors{i}", p, persistent=False)

    def forward(self, images: torch.Tensor, image_sizes: torch.Tensor | None = None):
        outs = self.model.bbox_head(self.model.extract_feat(images))
        if not self.nms:
            return tuple(m for group in outs for m in group)
        per_image = self._yolox_image if is_yolox(self.model) else self._image
        results = [per_image(outs, b, image_sizes[b]) for b in range(images.shape[0])]
        return tuple(torch.stack(r) for r in zip(*results))

    def _image(self, outs, b: int, size: torch.Tensor):
        head, cfg = self.model.bbox_head, self.model.bbox_head.test_cfg
        boxes, scores = [], []
        for level in range(len(outs[0])):
            per = [o[level][b] for o in outs]
            s, factor = head.level_scores(per)
            s = candidate_scores(s.float(), cfg.score_thr, cfg.nms_pre)
            if factor is not None:
                s = torch.where(s > EMPTY, s * factor.float()[:, None], s)
            priors = getattr(self, f"priors{level}")
            idx = torch.arange(priors.shape[0], device=priors.device)
            boxes.append(head.decode_level(per, priors, idx, level, (size[0], size[1])))
            scores.append(s)
        return self._nms(torch.cat(boxes).float(), torch.cat(scores), head.num_classes)

    def _yolox_image(self, outs, b: int, size: torch.Tensor):
        """YOLOXHead.predict_by_feat: one label per prior (best class x objectness >= score_thr),
        boxes unclipped, no nms_pre."""
        head, cfg = self.model.bbox_head, self.model.bbox_head.test_cfg
        boxes, scores = [], []
        for level in range(len(outs[0])):
            cls, reg, obj = (o[level][b] for o in outs)
            best, label = cls.permute(1, 2, 0).reshape(-1, head.num_classes).float().sigmoid().max(1)
            score = best * obj.permute(1, 2, 0).reshape(-1).float().sigmoid()
            idx = torch.arange(score.numel())
            boxes.append(head.decode_level([cls, reg], getattr(self, f"priors{level}"), idx, level, None))
            onehot = label[:, None] == torch.arange(head.num_classes)[None, :]
            scores.append(torch.where(onehot & (score >= cfg.score_thr)[:, None], score[:, None], score.new_tensor(EMPTY)))
        return self._nms(torch.cat(boxes).float(), torch.cat(scores), head.num_classes, min_size=False,
                         score_thr=EMPTY / 2)

    def _nms(self, boxes, scores, num_classes: int, min_size: bool = True, score_thr: float | None = None):
        """boxes (P, 4) of every prior, scores (P, C) with EMPTY for non-candidates -> the
        fixed-size (K, 4) boxes, (K,) scores, (K,) labels (-1 in unused slots)."""
        return padded_outputs(boxes, *self._select(boxes, scores, min_size, score_thr))

    def _select(self, boxes, scores, min_size: bool = True, score_thr: float | None = None):
        """min_bbox_size, then `_keep`."""
        cfg = self.model.bbox_head.test_cfg
        if min_size and cfg.min_bbox_size >= 0:
            wh = boxes[:, 2:] - boxes[:, :2]
            ok = (wh[:, 0] > cfg.min_bbox_size) & (wh[:, 1] > cfg.min_bbox_size)
            scores = torch.where(ok[:, None], scores, scores.new_tensor(EMPTY))
        return self._keep(boxes, scores, score_thr)

    def _keep(self, boxes, scores, score_thr: float | None = None):
        """Class-aware NMS of the (P, C) candidate matrix and the top max_per_img: (prior index,
        score, label, valid) per slot."""
        cfg = self.model.bbox_head.test_cfg
        mat = scores.t()[None]
        nms = MultiClassNMS.apply if torch.onnx.is_in_onnx_export() else nms_rows
        k = cfg.max_per_img
        sel = nms(boxes[None], mat, float(cfg.iou_threshold), float(cfg.score_thr if score_thr is None else score_thr),
                  k if k > 0 else ALL)
        kept = torch.cat([mat[0, sel[:, 1], sel[:, 2]], scores.new_full((k,), EMPTY)])
        top, order = kept.topk(k)
        box_idx = torch.cat([sel[:, 2], sel.new_zeros(k)])[order]
        cls = torch.cat([sel[:, 1], sel.new_full((k,), -1)])[order]
        return box_idx, top, cls, top > EMPTY


def padded_outputs(boxes, box_idx, top, cls, valid):
    """Kept slots' boxes, scores and labels; zeros and label -1 in the unused ones."""
    out_boxes = torch.where(valid[:, None], boxes[box_idx], boxes.new_zeros(()))
    return out_boxes, torch.where(valid, top, top.new_zeros(())), torch.where(valid, cls, cls.new_full((), -1))


def candidate_scores(scores: torch.Tensor, score_thr: float, nms_pre: int) -> torch.Tensor:
    """(P, C) scores with EMPTY wherever MMDetection's filter_scores_and_topk would drop the
    (prior, class) pair: at or below score_thr, or not among the nms_pre best."""
    keep = scores > score_thr
    if 0 < nms_pre < scores.numel():
        keep = keep & (scores >= kth_largest(scores.reshape(-1), nms_pre))
    return torch.where(keep, scores, scores.new_tensor(EMPTY))


def kth_largest(flat: torch.Tensor, k: int) -> torch.Tensor:
    """The k-th largest value of a 1-D tensor. Only the value is needed, so the TopK is unsorted
    and taken from whichever end is shorter (the k-th largest is the (n-k+1)-th smallest): the
    runtimes' TopK cost grows with k, and unsorted TopK skips the final sort."""
    n = flat.numel()
    if k <= n - k + 1:
        return flat.topk(k, sorted=False).values.min()
    return flat.topk(n - k + 1, largest=False, sorted=False).values.max()


def is_yolox(model) -> bool:
    from det.core.models.dense_heads.yolox_head import YOLOXHead

    return isinstance(model.bbox_head, YOLOXHead)


def output_groups(model: SingleStageDetector, imgsz: tuple[int, int]) -> tuple[int, int]:
    """(number of output groups, number of levels) of the head's raw forward."""
    with torch.inference_mode():
        outs = model.bbox_head(model.extract_feat(torch.zeros(1, 3, *imgsz)))
    return len(outs), len(outs[0])
