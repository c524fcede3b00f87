"""Label assignment: which priors are positives for which ground-truth box.

`AssignResult.gt_inds` per prior: 0 = negative, -1 = ignored, k > 0 = positive of gt k - 1.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from det.core.structures.boxes import box_overlaps

INF = 100000000.0
EPS = 1.0e-7


@dataclass
class AssignResult:
    num_gts: int
    gt_inds: torch.Tensor
    max_overlaps: torch.Tensor
    labels: torch.Tensor

    @property
    def num_preds(self) -> int:
        return int(self.gt_inds.numel())


def _empty_result(num_gts: int, num_priors: int, device: torch.device, negative: bool) -> AssignResult:
    gt_inds = torch.full((num_priors,), 0 if negative else -1, dtype=torch.long, device=device)
    return AssignResult(num_gts, gt_inds, torch.zeros(num_priors, device=device),
                        torch.full((num_priors,), -1, dtype=torch.long, device=device))


def _ignore_mask(priors: torch.Tensor, ignore: torch.Tensor | None, thr: float) -> torch.Tensor | None:
    """Priors whose intersection-over-foreground with an ignored box exceeds `thr`."""
    if ignore is None or ignore.numel() == 0 or thr <= 0:
        return None
    iof = box_overlaps(priors[:, :4], ignore, mode="iof")
    return iof.max(dim=1).values > thr


class MaxIoUAssigner:
    """IoU thresholds: >= pos_iou_thr positive, in [0, neg_iou_thr) negative (a (lo, hi) tuple
    gives a range), otherwise ignored; with `match_low_quality` each gt also takes the priors
    of its highest IoU if that IoU >= min_pos_iou (all of them when `gt_max_assign_all`)."""

    def __init__(self, pos_iou_thr: float, neg_iou_thr: float | tuple[float, float], min_pos_iou: float = 0.0,
                 gt_max_assign_all: bool = True, ignore_iof_thr: float = -1, match_low_quality: bool = True) -> None:
        self.pos_iou_thr = pos_iou_thr
        self.neg_iou_thr = tuple(neg_iou_thr) if isinstance(neg_iou_thr, (list, tuple)) else neg_iou_thr
        self.min_pos_iou = min_pos_iou
        self.gt_max_assign_all = gt_max_assign_all
        self.ignore_iof_thr = ignore_iof_thr
        self.match_low_quality = match_low_quality

    def assign(self, priors: torch.Tensor, gt_bboxes: torch.Tensor, gt_labels: torch.Tensor,
               gt_ignore: torch.Tensor | None = None, **_: object) -> AssignResult:
        num_gts, num_priors = gt_bboxes.size(0), priors.size(0)
        if num_gts == 0 or num_priors == 0:
            return _empty_result(num_gts, num_priors, priors.device, negative=True)
        overlaps = box_overlaps(gt_bboxes, priors[:, :4])  # (G, N)
        ignored = _ignore_mask(priors, gt_ignore, self.ignore_iof_thr)
        if ignored is not None:
            overlaps[:, ignored] = -1
        gt_inds = torch.full((num_priors,), -1, dtype=torch.long, device=priors.device)
        max_overlaps, argmax = overlaps.max(dim=0)
        gt_max_overlaps, gt_argmax = overlaps.max(dim=1)
        if isinstance(self.neg_iou_thr, tuple):
            neg = (max_overlaps >= self.neg_iou_thr[0]) & (max_overlaps < self.neg_iou_thr[1])
        else:
            neg = (max_overlaps >= 0) & (max_overlaps < self.neg_iou_thr)
        gt_inds[neg] = 0
        pos = max_overlaps >= self.pos_iou_thr
        gt_inds[pos] = argmax[pos] + 1
        if self.match_low_quality:
            for i in range(num_gts):
                if gt_max_overlaps[i] >= self.min_pos_iou:
                    if self.gt_max_assign_all:
                        gt_inds[overlaps[i, :] == gt_max_overlaps[i]] = i + 1
                    else:
                        gt_inds[gt_argmax[i]] = i + 1
        labels = torch.full_like(gt_inds, -1)
        posm = gt_inds > 0
        labels[posm] = gt_labels[gt_inds[posm] - 1]
        return AssignResult(num_gts, gt_inds, max_overlaps, labels)


class ATSSAssigner:
    """Adaptive Training Sample Selection: per level the `topk` priors closest to each gt
    centre are candidates; a candidate whose IoU >= mean + std of the candidates' IoUs and whose
    centre lies inside the gt is positive (the highest-IoU gt wins)."""

    def __init__(self, topk: int = 9, ignore_iof_thr: float = -1) -> None:
        self.topk = topk
        self.ignore_iof_thr = ignore_iof_thr

    def assign(self, priors: torch.Tensor, gt_bboxes: torch.Tensor, gt_labels: torch.Tensor,
               num_level_priors: list[int], gt_ignore: torch.Tensor | None = None, **_: object) -> AssignResult:
        priors = priors[:, :4]
        num_gts, num_priors = gt_bboxes.size(0), priors.size(0)
        if num_gts == 0 or num_priors == 0:
            return _empty_result(num_gts, num_priors, priors.device, negative=True)
        overlaps = box_overlaps(priors, gt_bboxes)  # (N, G)
        gt_c = (gt_bboxes[:, :2] + gt_bboxes[:, 2:]) / 2.0
        pr_c = (priors[:, :2] + priors[:, 2:]) / 2.0
        distances = (pr_c[:, None, :] - gt_c[None, :, :]).pow(2).sum(-1).sqrt()
        ignored = _ignore_mask(priors, gt_ignore, self.ignore_iof_thr)
        if ignored is not None:
            distances[ignored, :] = INF
        candidates = []
        start = 0
        for n in num_level_priors:
            k = min(self.topk, n)
            _, idx = distances[start:start + n].topk(k, dim=0, largest=False)
            candidates.append(idx + start)
            start += n
        cand = torch.cat(candidates, dim=0)  # (K, G)
        cand_ov = overlaps[cand, torch.arange(num_gts, device=priors.device)]
        thr = cand_ov.mean(0) + cand_ov.std(0)
        is_pos = cand_ov >= thr[None, :]
        # centre of each candidate strictly inside its gt (margin 0.01 like the reference)
        cx, cy = pr_c[cand, 0], pr_c[cand, 1]
        inside = torch.stack([cx - gt_bboxes[:, 0], cy - gt_bboxes[:, 1], gt_bboxes[:, 2] - cx,
                              gt_bboxes[:, 3] - cy], dim=-1).min(dim=-1).values > 0.01
        is_pos = is_pos & inside
        ov_inf = torch.full_like(overlaps, -INF).t().contiguous().view(-1)
        flat = (cand + torch.arange(num_gts, device=priors.device) * num_priors).view(-1)[is_pos.view(-1)]
        ov_inf[flat] = overlaps.t().contiguous().view(-1)[flat]
        ov_inf = ov_inf.view(num_gts, -1).t()
        max_ov, argmax = ov_inf.max(dim=1)
        gt_inds = torch.zeros(num_priors, dtype=torch.long, device=priors.device)
        posm = max_ov != -INF
        gt_inds[posm] = argmax[posm] + 1
        labels = torch.full_like(gt_inds, -1)
        labels[posm] = gt_labels[argmax[posm]]
        max_ov = torch.where(posm, max_ov, torch.zeros_like(max_ov))
        return AssignResult(num_gts, gt_inds, max_ov, labels)


class DynamicSoftLabelAssigner:
    """RTMDet's SimOTA variant: cost = soft-label classification cost + iou_weight * -log(IoU)
    + 10 ** (centre distance / stride - soft_center_radius), over priors whose centre lies in
    some gt; each gt takes its dynamic_k = sum(top-`topk` IoUs) lowest-cost priors."""

    def __init__(self, soft_center_radius: float = 3.0, topk: int = 13, iou_weight: float = 3.0) -> None:
        self.soft_center_radius = soft_center_radius
        self.topk = topk
        self.iou_weight = iou_weight

    def assign(self, priors: torch.Tensor, gt_bboxes: torch.Tensor, gt_labels: torch.Tensor,
               pred_scores: torch.Tensor, pred_bboxes: torch.Tensor, **_: object) -> AssignResult:
        num_gts, num_priors = gt_bboxes.size(0), priors.size(0)
        device = priors.device
        if num_gts == 0 or num_priors == 0:
            return _empty_result(num_gts, num_priors, device, negative=True)
        centers = priors[:, :2]
        deltas = torch.cat([centers[:, None] - gt_bboxes[:, :2], gt_bboxes[:, 2:] - centers[:, None]], dim=-1)
        valid = (deltas.min(dim=-1).values > 0).any(dim=1)
        gt_inds = torch.zeros(num_priors, dtype=torch.long, device=device)
        labels = torch.full((num_priors,), -1, dtype=torch.long, device=device)
        max_overlaps = torch.zeros(num_priors, device=device)
        if not valid.any():
            return AssignResult(num_gts, gt_inds, max_overlaps, labels)
        v_boxes = pred_bboxes[valid].float()
        v_scores = pred_scores[valid].float()
        v_priors = priors[valid]
        gt_c = (gt_bboxes[:, :2] + gt_bboxes[:, 2:]) / 2.0
        dist = (v_priors[:, None, :2] - gt_c[None]).pow(2).sum(-1).sqrt() / v_priors[:, 2:3]
        center_cost = torch.pow(10, dist - self.soft_center_radius)
        ious = box_overlaps(v_boxes, gt_bboxes.float())
        iou_cost = -torch.log(ious + EPS) * self.iou_weight
        # soft-label classification cost, evaluated only at each gt's class (the other
        # classes' terms are the same for every gt and cannot change the argmin)
        logits = v_scores[:, gt_labels]  # (V, G)
        soft = ious
        cls_cost = F.binary_cross_entropy_with_logits(logits, soft, reduction="none") * \
            (soft - logits.sigmoid()).abs().pow(2.0)
        neg_terms = F.binary_cross_entropy_with_logits(v_scores, torch.zeros_like(v_scores), reduction="none") * \
            v_scores.sigmoid().pow(2.0)
        cls_cost = cls_cost + neg_terms.sum(-1, keepdim=True) - neg_terms[:, gt_labels]
        cost = cls_cost + iou_cost + center_cost
        matched_ious, matched_gt, fg = dynamic_k_matching(cost, ious, self.topk)
        idx = valid.nonzero().squeeze(1)[fg]
        gt_inds[idx] = matched_gt + 1
        labels[idx] = gt_labels[matched_gt]
        max_overlaps[idx] = matched_ious
        return AssignResult(num_gts, gt_inds, max_overlaps, labels)


def dynamic_k_matching(cost: torch.Tensor, ious: torch.Tensor, topk: int
                       ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """SimOTA's matching on (V, G) cost and IoU: gt g takes its k_g = max(1, int(sum of its
    top-`topk` IoUs)) lowest-cost candidates; a candidate taken by several gts keeps the cheapest.
    -> (IoU with the matched gt, matched gt index, mask of matched candidates)."""
    num_gts = cost.size(1)
    matching = torch.zeros_like(cost, dtype=torch.bool)
    k = min(topk, ious.size(0))
    topk_ious, _ = torch.topk(ious, k, dim=0)
    dynamic_ks = torch.clamp(topk_ious.sum(0).int(), min=1)
    for g in range(num_gts):
        _, pos = torch.topk(cost[:, g], k=int(dynamic_ks[g]), largest=False)
        matching[pos, g] = True
    multi = matching.sum(1) > 1
    if multi.any():
        argmin = cost[multi].argmin(dim=1)
        matching[multi] = False
        matching[multi.nonzero().squeeze(1), argmin] = True
    fg = matching.any(dim=1)
    matched_gt = matching[fg].float().argmax(1)
    matched_ious = (matching.float() * ious).sum(1)[fg]
    return matched_ious, matched_gt, fg


class SimOTAAssigner:
    """YOLOX's SimOTA: candidates are priors (cx, cy, stride_w, stride_h) whose centre lies in a
    gt box or within `center_radius` strides of a gt centre; cost = cls_weight * BCE(scores,
    one-hot gt class) summed over classes + iou_weight * -log(IoU) + a large constant unless the
    prior is both in that gt's box and its centre region; dynamic-k matching over the
    `candidate_topk` best IoUs. `pred_scores` are probabilities (YOLOX: sqrt(cls * obj))."""

    INF = 100000.0

    def __init__(self, center_radius: float = 2.5, candidate_topk: int = 10, iou_weight: float = 3.0,
                 cls_weight: float = 1.0) -> None:
        self.center_radius = center_radius
        self.candidate_topk = candidate_topk
        self.iou_weight = iou_weight
        self.cls_weight = cls_weight

    def assign(self, priors: torch.Tensor, gt_bboxes: torch.Tensor, gt_labels: torch.Tensor,
               pred_scores: torch.Tensor, pred_bboxes: torch.Tensor, **_: object) -> AssignResult:
        num_gts = gt_bboxes.size(0)
        result = _empty_result(num_gts, priors.size(0), priors.device, negative=True)
        if num_gts == 0 or priors.size(0) == 0:
            return result
        valid, in_both = self._candidates(priors, gt_bboxes)
        if not valid.any():
            return result
        ious = box_overlaps(pred_bboxes[valid].float(), gt_bboxes.float())
        iou_cost = -torch.log(ious + EPS)
        scores = pred_scores[valid].float()
        onehot = F.one_hot(gt_labels.long(), scores.size(-1)).float()
        cls_cost = F.binary_cross_entropy(scores[:, None].expand(-1, num_gts, -1),
                                          onehot[None].expand(scores.size(0), -1, -1), reduction="none").sum(-1)
        cost = cls_cost * self.cls_weight + iou_cost * self.iou_weight + (~in_both) * self.INF
        matched_ious, matched_gt, fg = dynamic_k_matching(cost, ious, self.candidate_topk)
        idx = valid.nonzero().squeeze(1)[fg]
        result.gt_inds[idx] = matched_gt + 1
        result.labels[idx] = gt_labels[matched_gt].long()
        result.max_overlaps[idx] = matched_ious
        return result

    def _candidates(self, priors: torch.Tensor, gt_bboxes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(priors inside some gt box or centre region, (V, G) inside both for that gt)."""
        xy, stride = priors[:, None, :2], priors[:, None, 2:4]
        in_box = torch.cat([xy - gt_bboxes[None, :, :2], gt_bboxes[None, :, 2:] - xy], -1).min(-1).values > 0
        centre = (gt_bboxes[None, :, :2] + gt_bboxes[None, :, 2:]) / 2.0
        radius = self.center_radius * stride
        in_ctr = torch.cat([xy - (centre - radius), (centre + radius) - xy], -1).min(-1).values > 0
        valid = in_box.any(1) | in_ctr.any(1)
        return valid, in_box[valid] & in_ctr[valid]


ASSIGNERS = {"MaxIoUAssigner": MaxIoUAssigner, "ATSSAssigner": ATSSAssigner,
             "DynamicSoftLabelAssigner": DynamicSoftLabelAssigner, "SimOTAAssigner": SimOTAAssigner}
