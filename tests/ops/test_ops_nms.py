"""nms / batched_nms against torchvision (identical indices) and a reference; Soft-NMS against a reference."""
from __future__ import annotations

import pytest
import torch
import torchvision
from ops_refs import nms_ref, soft_nms_ref

import det.ops as O


def random_boxes(n: int, seed: int, lo: float = 4.0, hi: float = 120.0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    centre = torch.rand(n, 2, generator=g) * 400
    wh = lo + torch.rand(n, 2, generator=g) * (hi - lo)
    boxes = torch.cat([centre - wh / 2, centre + wh / 2], 1)
    scores = torch.rand(n, generator=g)
    if n >= 10:
        boxes[1::9] = boxes[0::9][: len(boxes[1::9])]          # exact duplicates
        boxes[2::11, 2:] = boxes[2::11, :2]                     # zero-area boxes
        scores[::5] = (scores[::5] * 4).round() / 4              # tied scores
    return boxes.to(dtype), scores.to(dtype)


@pytest.mark.parametrize("n", [0, 1, 2, 37, 500, 3000])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_nms_matches_torchvision(n, dtype):
    boxes, scores = random_boxes(n, seed=n, dtype=dtype)
    for thr in (0.0, 0.3, 0.5, 0.7, 1.0):
        assert torch.equal(O.nms(boxes, scores, thr), torchvision.ops.nms(boxes, scores, thr)), thr


@pytest.mark.parametrize("n", [1, 60, 300])
def test_nms_matches_reference(n):
    boxes, scores = random_boxes(n, seed=100 + n, dtype=torch.float64)
    assert torch.equal(O.nms(boxes, scores, 0.45), nms_ref(boxes, scores, 0.45))


def test_nms_grid_path_edge_cases():
    # One huge box among many small ones (the 'big' list), all boxes equal, a negative threshold.
    boxes, scores = random_boxes(4000, seed=7, lo=1, hi=30)
    boxes[5] = torch.tensor([-1000.0, -1000.0, 5000.0, 5000.0])
    assert torch.equal(O.nms(boxes, scores, 0.01), torchvision.ops.nms(boxes, scores, 0.01))
    same = torch.tensor([[1.0, 2.0, 30.0, 40.0]]).repeat(2500, 1)
    s = torch.rand(2500)
    assert torch.equal(O.nms(same, s, 0.5), torchvision.ops.nms(same, s, 0.5))
    assert torch.equal(O.nms(boxes, scores, -0.1), torchvision.ops.nms(boxes, scores, -0.1))


@pytest.mark.parametrize("n", [0, 1, 200, 999, 1001, 4000])
def test_batched_nms_matches_torchvision(n):
    boxes, scores = random_boxes(n, seed=n + 5)
    idxs = torch.randint(0, 7, (n,), generator=torch.Generator().manual_seed(n))
    for thr in (0.3, 0.6):
        assert torch.equal(O.batched_nms(boxes, scores, idxs, thr), torchvision.ops.batched_nms(boxes, scores, idxs, thr))


def test_one_and_two_threads_identical():
    boxes, scores = random_boxes(6000, seed=3)
    idxs = torch.randint(0, 20, (6000,), generator=torch.Generator().manual_seed(1))
    before = torch.get_num_threads()
    try:
        results = []
        for threads in (1, 2):
            torch.set_num_threads(threads)
            results.append((O.nms(boxes, scores, 0.5), O.batched_nms(boxes, scores, idxs, 0.5),
                            O.batched_soft_nms(boxes[:800], scores[:800], idxs[:800], 0.3, 0.5, 1e-3, "gaussian")))
    finally:
        torch.set_num_threads(before)
    (a1, b1, (k1, s1)), (a2, b2, (k2, s2)) = results
    assert torch.equal(a1, a2) and torch.equal(b1, b2) and torch.equal(k1, k2) and torch.equal(s1, s2)


@pytest.mark.parametrize("method", ["linear", "gaussian"])
@pytest.mark.parametrize("n", [0, 1, 80])
def test_soft_nms_matches_reference(method, n):
    boxes, scores = random_boxes(n, seed=50 + n, dtype=torch.float64)
    keep, new = O.soft_nms(boxes, scores, iou_threshold=0.3, sigma=0.5, min_score=0.05, method=method)
    ref_keep, ref_new = soft_nms_ref(boxes, scores, 0.3, 0.5, 0.05, method)
    assert torch.equal(keep, ref_keep)
    torch.testing.assert_close(new, ref_new, rtol=1e-9, atol=1e-12)
    assert new.dtype == scores.dtype and bool((new[:-1] >= new[1:]).all()) if n else keep.numel() == 0


def test_soft_nms_hand_computed():
    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [0.0, 0.0, 10.0, 5.0], [20.0, 20.0, 30.0, 30.0]])
    scores = torch.tensor([0.9, 0.8, 0.7])
    keep, new = O.soft_nms(boxes, scores, iou_threshold=0.3, method="linear")
    # IoU(0, 1) = 50 / 100 = 0.5 > 0.3 -> 0.8 * (1 - 0.5) = 0.4; box 2 does not overlap.
    assert keep.tolist() == [0, 2, 1]
    torch.testing.assert_close(new, torch.tensor([0.9, 0.7, 0.4]))
    keep, new = O.soft_nms(boxes, scores, sigma=0.5, method="gaussian")
    torch.testing.assert_close(new[2], torch.tensor(0.8) * torch.exp(torch.tensor(-0.25 / 0.5)))


def test_batched_soft_nms_is_per_class():
    boxes, scores = random_boxes(120, seed=9, dtype=torch.float64)
    idxs = torch.arange(120) % 3
    keep, new = O.batched_soft_nms(boxes, scores, idxs, 0.3, 0.5, 0.01, "linear")
    for c in range(3):
        sel = torch.where(idxs == c)[0]
        ref_keep, ref_new = soft_nms_ref(boxes[sel], scores[sel], 0.3, 0.5, 0.01, "linear")
        mine = keep[idxs[keep] == c]
        assert torch.equal(mine, sel[ref_keep])
        torch.testing.assert_close(new[idxs[keep] == c], ref_new)
    assert bool((new[:-1] >= new[1:]).all())


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="boxes must have shape"):
        O.nms(torch.zeros(3, 5), torch.zeros(3), 0.5)
    with pytest.raises(ValueError, match="scores must have shape"):
        O.nms(torch.zeros(3, 4), torch.zeros(2), 0.5)
    with pytest.raises(ValueError, match="method"):
        O.soft_nms(torch.zeros(3, 4), torch.zeros(3), method="cubic")
