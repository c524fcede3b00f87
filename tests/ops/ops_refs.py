"""Pure-PyTorch / pure-Python reference implementations the compiled ops are checked against."""
from __future__ import annotations

import math

import torch


def box_iou_ref(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """IoU of every pair (float64), 0 where the union is 0."""
    a, b = a.double(), b.double()
    lt = torch.maximum(a[:, None, :2], b[None, :, :2])
    rb = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = (rb - lt).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None] - inter
    return torch.where(union > 0, inter / union, torch.zeros_like(inter))


def nms_ref(boxes: torch.Tensor, scores: torch.Tensor, thr: float) -> torch.Tensor:
    """Textbook greedy NMS: stable descending order, drop IoU > thr with each kept box."""
    order = torch.sort(scores, descending=True, stable=True).indices.tolist()
    iou = box_iou_ref(boxes, boxes)
    removed = set()
    keep = []
    for pos, i in enumerate(order):
        if i in removed:
            continue
        keep.append(i)
        for j in order[pos + 1:]:
            if iou[i, j] > thr:
                removed.add(j)
    return torch.tensor(keep, dtype=torch.int64)


def soft_nms_ref(boxes, scores, thr, sigma, min_score, method):
    """Soft-NMS as documented: pick the max (lowest index on ties), decay the rest, drop < min_score."""
    iou = box_iou_ref(boxes, boxes)
    s = {i: float(v) for i, v in enumerate(scores.tolist()) if float(v) >= min_score}
    keep, kept = [], []
    while s:
        best = max(s, key=lambda i: (s[i], -i))
        keep.append(best)
        kept.append(s.pop(best))
        for j in list(s):
            o = float(iou[best, j])
            w = (1 - o if o > thr else 1.0) if method == "linear" else math.exp(-(o * o) / sigma)
            s[j] *= w
            if s[j] < min_score:
                del s[j]
    return torch.tensor(keep, dtype=torch.int64), torch.tensor(kept, dtype=torch.float64)


def focal_ref(x, t, alpha, gamma, reduction, weight=None):
    """Focal loss from its definition (float64)."""
    x, t = x.double(), t.double()
    p = torch.sigmoid(x)
    ce = -(t * torch.log(p) + (1 - t) * torch.log1p(-p))
    p_t = p * t + (1 - p) * (1 - t)
    loss = ce * (1 - p_t) ** gamma
    if alpha >= 0:
        loss = (alpha * t + (1 - alpha) * (1 - t)) * loss
    if weight is not None:
        loss = loss * weight.double()
    return {"none": loss, "mean": loss.mean(), "sum": loss.sum()}[reduction]


def wbf_ref(boxes_list, scores_list, labels_list, weights=None, iou_thr=0.55, skip_box_thr=0.0,
            conf_type="avg", allows_overflow=False):
    """Weighted boxes fusion written from the algorithm's description (Solovyev et al.), float64.

    Per label: boxes (clipped to [0, 1], zero-area and low-score ones dropped) are visited in
    decreasing weighted score; each joins the cluster whose fused box has the highest IoU
    (> iou_thr) or opens a new cluster; fused box = score-weighted mean of its members; the
    cluster score is rescaled according to conf_type.
    """
    n_models = len(boxes_list)
    weights = [1.0] * n_models if weights is None else [float(w) for w in weights]
    by_label: dict[int, list] = {}
    for m in range(n_models):
        for b, s, lab in zip(boxes_list[m], scores_list[m], labels_list[m]):
            if float(s) < skip_box_thr:
                continue
            x1, y1, x2, y2 = (float(v) for v in b)
            x1, x2 = min(x1, x2), max(x1, x2)
            y1, y2 = min(y1, y2), max(y1, y2)
            x1, y1, x2, y2 = (min(max(v, 0.0), 1.0) for v in (x1, y1, x2, y2))
            if (x2 - x1) * (y2 - y1) == 0:
                continue
            by_label.setdefault(int(lab), []).append((float(s) * weights[m], weights[m], m, [x1, y1, x2, y2]))
    out = []
    for label, entries in by_label.items():
        entries = sorted(entries, key=lambda e: -e[0])
        clusters = []  # [members, fused_box, fused_score]
        for e in entries:
            best, best_iou = -1, iou_thr
            for ci, c in enumerate(clusters):
                v = float(box_iou_ref(torch.tensor([c[1]]), torch.tensor([e[3]]))[0, 0])
                if v > best_iou:
                    best, best_iou = ci, v
            if best < 0:
                clusters.append([[e], list(e[3]), e[0]])
                continue
            members = clusters[best][0]
            members.append(e)
            conf = sum(m[0] for m in members)
            clusters[best][1] = [sum(m[0] * m[3][k] for m in members) / conf for k in range(4)]
            clusters[best][2] = max(m[0] for m in members) if conf_type == "max" else conf / len(members)
        for members, box, score in clusters:
            n = len(members)
            wsum = sum(m[1] for m in members)
            models = {m[2] for m in members}
            if conf_type == "box_and_model_avg":
                score = score * n / wsum * sum(weights[k] for k in models) / sum(weights)
            elif conf_type == "absent_model_aware_avg":
                score = score * n / (wsum + sum(w for k, w in enumerate(weights) if k not in models))
            elif conf_type == "max":
                score = score / max(weights)
            else:
                score = score * (n if allows_overflow else min(n_models, n)) / sum(weights)
            out.append((score, label, box))
    out.sort(key=lambda r: -r[0])
    return ([r[2] for r in out], [r[0] for r in out], [r[1] for r in out])


def ms_deform_attn_ref(value: torch.Tensor, shapes: torch.Tensor, loc: torch.Tensor,
                       attn: torch.Tensor) -> torch.Tensor:
    """mmcv's multi_scale_deformable_attn_pytorch, restated: one grid_sample per level and head."""
    import torch.nn.functional as F

    b, _, heads, c = value.shape
    q, levels, points = loc.shape[1], loc.shape[3], loc.shape[4]
    out = value.new_zeros(b, q, heads, c)
    start = 0
    for lvl, (h, w) in enumerate(shapes.tolist()):
        v = value[:, start:start + h * w]  # (B, HW, heads, C)
        start += h * w
        for head in range(heads):
            fmap = v[:, :, head].transpose(1, 2).reshape(b, c, h, w)
            grid = 2 * loc[:, :, head, lvl] - 1  # (B, Q, P, 2)
            s = F.grid_sample(fmap, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
            out[:, :, head] += (s * attn[:, None, :, head, lvl]).sum(-1).transpose(1, 2)
    return out.flatten(2)
