"""Matrix NMS against hand-computed decays and a pair-by-pair reference written here."""
from __future__ import annotations

import math

import pytest
import torch

from det.ops import matrix_nms


def _masks(*rows: list[int]) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.bool)[:, None, :]  # (N, 1, W)


# A, B, D share class 0; C is class 1. IoU(A, B) = 2/4, IoU(A, D) = IoU(B, D) = 3/4, IoU(A, C) = 3/4.
MASKS = _masks([1, 1, 1, 0], [0, 1, 1, 1], [1, 1, 1, 1], [1, 1, 1, 1])
LABELS = torch.tensor([0, 0, 1, 0])
SCORES = torch.tensor([0.9, 0.8, 0.7, 0.6])


def test_gaussian_decay_by_hand():
    scores, labels, masks, idx = matrix_nms(MASKS, LABELS, SCORES, kernel="gaussian", sigma=2.0)
    # B: exp(-2 * 0.5^2); D: min(exp(-2 * 0.75^2) / 1, exp(-2 * 0.75^2) / exp(-2 * 0.5^2)); C untouched
    want = {0: 0.9, 1: 0.8 * math.exp(-0.5), 2: 0.7, 3: 0.6 * math.exp(-1.125)}
    assert idx.tolist() == [0, 2, 1, 3]
    assert scores.tolist() == pytest.approx([want[i] for i in idx.tolist()], abs=1e-6)
    assert torch.equal(labels, LABELS[idx]) and torch.equal(masks, MASKS[idx])


def test_linear_decay_filter_and_max_num_by_hand():
    scores, labels, _, idx = matrix_nms(MASKS, LABELS, SCORES, kernel="linear", filter_thr=0.3, max_num=2)
    # linear: B 0.8 * (1 - 0.5) = 0.4, D 0.6 * min(0.25 / 1, 0.25 / 0.5) = 0.15 (< 0.3: dropped); top 2
    assert idx.tolist() == [0, 2] and scores.tolist() == pytest.approx([0.9, 0.7], abs=1e-6)
    assert labels.tolist() == [0, 1]
    _, _, _, idx = matrix_nms(MASKS, LABELS, SCORES, kernel="linear", filter_thr=0.3)
    assert idx.tolist() == [0, 2, 1]


def test_nms_pre_keeps_only_the_best_and_empty_inputs():
    scores, _, _, idx = matrix_nms(MASKS, LABELS, SCORES, nms_pre=2, kernel="linear")
    assert idx.tolist() == [0, 1] and scores.tolist() == pytest.approx([0.9, 0.4])
    s, lab, m, i = matrix_nms(MASKS[:0], LABELS[:0], SCORES[:0])
    assert s.numel() == lab.numel() == i.numel() == 0 and m.shape == (0, 1, 4)
    s, *_ = matrix_nms(MASKS, LABELS, SCORES * 0.01, filter_thr=0.05)
    assert s.numel() == 0
    with pytest.raises(ValueError, match="kernel"):
        matrix_nms(MASKS, LABELS, SCORES, kernel="box")


def reference(masks, labels, scores, kernel, sigma):
    """Pair by pair, in score order: the decay of j is the minimum over higher-scoring i of its
    class of f(iou_ij) / f(largest IoU of i with a higher-scoring mask of its class)."""
    order = sorted(range(len(scores)), key=lambda k: -float(scores[k]))
    f = (lambda v: math.exp(-sigma * v * v)) if kernel == "gaussian" else (lambda v: 1 - v)

    def iou(a, b):
        inter = float((masks[a] & masks[b]).sum())
        return inter / (float(masks[a].sum()) + float(masks[b].sum()) - inter)

    out = {}
    for pos, j in enumerate(order):
        above = [i for i in order[:pos] if labels[i] == labels[j]]
        comp = {i: max([iou(k, i) for k in order[:order.index(i)] if labels[k] == labels[i]], default=0.0)
                for i in above}
        out[j] = float(scores[j]) * min([1.0] + [f(iou(i, j)) / f(comp[i]) for i in above])
    return out


@pytest.mark.parametrize("kernel", ["gaussian", "linear"])
def test_random_masks_match_the_pairwise_reference(kernel):
    g = torch.Generator().manual_seed(0)
    masks = torch.rand((40, 12, 12), generator=g) > 0.5
    masks[:, :4, :4] = True  # heavy overlaps
    labels = torch.randint(0, 3, (40,), generator=g)
    scores = torch.rand(40, generator=g)
    got_scores, got_labels, _, idx = matrix_nms(masks, labels, scores, kernel=kernel, sigma=2.0)
    want = reference(masks, labels, scores, kernel, 2.0)
    assert sorted(idx.tolist()) == list(range(40))
    assert got_scores.tolist() == pytest.approx([want[i] for i in idx.tolist()], abs=1e-5)
    assert torch.equal(got_labels, labels[idx]) and bool((got_scores[:-1] >= got_scores[1:]).all())
