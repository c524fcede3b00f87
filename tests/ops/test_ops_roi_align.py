"""roi_align forward/backward against torchvision (both kernel paths), gradcheck, threads."""
from __future__ import annotations

import pytest
import torch
import torchvision

import det.ops as O


def make(k: int, seed: int, dtype=torch.float64, batch=2, c=6, h=20, w=30, img=(120.0, 80.0)):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, c, h, w, generator=g, dtype=dtype)
    centre = torch.rand(k, 2, generator=g) * torch.tensor(img) * 1.2 - 10   # some boxes leave the image
    wh = torch.rand(k, 2, generator=g) * 70
    rois = torch.cat([torch.randint(0, batch, (k, 1), generator=g), centre - wh / 2, centre + wh / 2], 1).to(dtype)
    if k > 2:
        rois[1, 3:] = rois[1, 1:3]  # zero-size RoI
    return x, rois


def compare(x, rois, out, scale, sr, aligned, atol):
    xa = x.clone().requires_grad_()
    xb = x.clone().requires_grad_()
    a = O.roi_align(xa, rois, out, scale, sr, aligned)
    b = torchvision.ops.roi_align(xb, rois, out, scale, sr, aligned)
    # rtol 1e-6 (a few float32 ulps): outputs reach ~10, where summation order alone moves ~1e-5.
    torch.testing.assert_close(a, b, atol=atol, rtol=1e-6)
    grad = torch.randn_like(a)
    a.backward(grad)
    b.backward(grad)
    torch.testing.assert_close(xa.grad, xb.grad, atol=atol, rtol=1e-6)


# k=3 takes the direct NCHW kernel; k=400 the channels-last separable kernel.
@pytest.mark.parametrize("k", [0, 1, 3, 400])
@pytest.mark.parametrize("sr", [0, 2, -1])
@pytest.mark.parametrize("aligned", [False, True])
def test_matches_torchvision_float64(k, sr, aligned):
    x, rois = make(k, seed=k + sr)
    compare(x, rois, (7, 5), 0.25, sr, aligned, atol=1e-10)


@pytest.mark.parametrize("k", [3, 400])
def test_matches_torchvision_float32(k):
    x, rois = make(k, seed=11, dtype=torch.float32)
    for sr in (0, 2):
        compare(x, rois, 7, 0.25, sr, True, atol=1e-5)


def test_list_of_boxes_and_channels_last():
    x, rois = make(50, seed=3)
    boxes = [rois[rois[:, 0] == i, 1:] for i in range(2)]
    order = torch.cat([torch.where(rois[:, 0] == i)[0] for i in range(2)])
    a = O.roi_align(x, boxes, 4, 0.25, 2)
    torch.testing.assert_close(a, torchvision.ops.roi_align(x, rois[order], 4, 0.25, 2))
    cl = x.contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(O.roi_align(cl, rois[:2], 4, 0.25, 2), torchvision.ops.roi_align(x, rois[:2], 4, 0.25, 2))


@pytest.mark.parametrize("k", [2, 40])
def test_gradcheck(k):
    x, rois = make(k, seed=5, batch=1, c=2, h=6, w=7, img=(28.0, 24.0))
    x.requires_grad_()
    assert torch.autograd.gradcheck(lambda t: O.roi_align(t, rois, 2, 0.25, 2, True), (x,))
    assert torch.autograd.gradcheck(lambda t: O.roi_align(t, rois, (2, 3), 0.25, 0, False), (x,))


def test_one_and_two_threads_identical():
    x, rois = make(300, seed=8, dtype=torch.float32)
    before = torch.get_num_threads()
    outs = []
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            xg = x.clone().requires_grad_()
            y = O.roi_align(xg, rois, 7, 0.25, 0, True)
            y.sum().backward()
            outs.append((y.detach(), xg.grad))
    finally:
        torch.set_num_threads(before)
    assert torch.equal(outs[0][0], outs[1][0]) and torch.equal(outs[0][1], outs[1][1])


def test_bad_rois_raise():
    x, _ = make(1, seed=0)
    with pytest.raises(ValueError, match=r"\(K, 5\)"):
        O.roi_align(x, torch.zeros(3, 4, dtype=x.dtype), 2)
    with pytest.raises(RuntimeError, match="batch index"):
        O.roi_align(x, torch.tensor([[5.0, 0, 0, 4, 4]], dtype=x.dtype), 2)


def test_opcheck():
    x, rois = make(4, seed=2, batch=1, c=2, h=5, w=6, img=(24.0, 20.0))
    torch.library.opcheck(torch.ops.det.roi_align.default, (x.requires_grad_(), rois, 0.25, 2, 2, 2, True))
