"""bbox_overlaps (compiled and torch paths) against torchvision, hand values and each other."""
from __future__ import annotations

import pytest
import torch
import torchvision

import det.ops as O
from det.ops.bbox_overlaps import bbox_overlaps_torch


def boxes(n, seed, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    c = torch.rand(n, 2, generator=g) * 100
    wh = torch.rand(n, 2, generator=g) * 40
    b = torch.cat([c - wh / 2, c + wh / 2], 1).to(dtype)
    if n > 3:
        b[3, 2:] = b[3, :2]  # zero area
    return b


@pytest.mark.parametrize("n,m", [(0, 5), (5, 0), (1, 1), (40, 70)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_iou_giou_match_torchvision(n, m, dtype):
    a, b = boxes(n, 1, dtype), boxes(m, 2, dtype)
    # torchvision gives NaN for two zero-area boxes; eps makes it 0 here, so skip eps-bound pairs.
    tv_iou = torchvision.ops.box_iou(a, b).nan_to_num(0.0)
    torch.testing.assert_close(O.bbox_overlaps(a, b), tv_iou, atol=1e-6, rtol=1e-5)
    if n and m:
        tv_giou = torchvision.ops.generalized_box_iou(a, b)
        ok = ~tv_giou.isnan()
        torch.testing.assert_close(O.bbox_overlaps(a, b, "giou")[ok], tv_giou[ok], atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("mode", ["iou", "iof", "giou"])
@pytest.mark.parametrize("aligned", [False, True])
def test_compiled_equals_torch_path(mode, aligned):
    a, b = boxes(60, 3), boxes(60, 4)
    torch.testing.assert_close(O.bbox_overlaps(a, b, mode, aligned), bbox_overlaps_torch(a, b, mode, aligned),
                               atol=0, rtol=0)


def test_hand_computed():
    a = torch.tensor([[0.0, 0.0, 10.0, 10.0]])
    b = torch.tensor([[5.0, 0.0, 15.0, 10.0], [20.0, 20.0, 30.0, 30.0]])
    torch.testing.assert_close(O.bbox_overlaps(a, b), torch.tensor([[50 / 150, 0.0]]))
    torch.testing.assert_close(O.bbox_overlaps(a, b, "iof"), torch.tensor([[0.5, 0.0]]))
    # GIoU of the disjoint pair: 0 - (900 - 200) / 900.
    torch.testing.assert_close(O.bbox_overlaps(a, b, "giou"), torch.tensor([[50 / 150, -700 / 900]]))
    torch.testing.assert_close(O.bbox_overlaps(a.repeat(2, 1), b, aligned=True), torch.tensor([50 / 150, 0.0]))


def test_batched_and_differentiable():
    a, b = boxes(12, 5, torch.float64).reshape(3, 4, 4), boxes(15, 6, torch.float64).reshape(3, 5, 4)
    out = O.bbox_overlaps(a, b, "giou")
    assert out.shape == (3, 4, 5)
    for i in range(3):
        torch.testing.assert_close(out[i], O.bbox_overlaps(a[i], b[i], "giou"))
    x = boxes(4, 7, torch.float64)
    x[:, 2:] += 1
    x.requires_grad_()
    y = boxes(4, 8, torch.float64) + 1
    assert torch.autograd.gradcheck(lambda t: O.bbox_overlaps(t, y, "giou", aligned=True), (x,))


def test_bad_arguments():
    with pytest.raises(ValueError, match="mode"):
        O.bbox_overlaps(boxes(2, 0), boxes(2, 1), "dice")
    with pytest.raises(ValueError, match="aligned"):
        O.bbox_overlaps(boxes(2, 0), boxes(3, 1), aligned=True)
