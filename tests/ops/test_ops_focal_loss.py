"""sigmoid_focal_loss against torchvision and a float64 reference; gradcheck; weights; threads."""
from __future__ import annotations

import pytest
import torch
import torchvision
from ops_refs import focal_ref

import det.ops as O


def make(n=300, c=7, seed=0, dtype=torch.float32, soft=False):
    g = torch.Generator().manual_seed(seed)
    x = (torch.randn(n, c, generator=g) * 4).to(dtype)
    t = torch.rand(n, c, generator=g) if soft else (torch.rand(n, c, generator=g) < 0.2).float()
    return x, t.to(dtype)


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("alpha,gamma", [(0.25, 2.0), (-1.0, 2.0), (0.5, 0.0), (0.25, 1.0), (0.75, 1.5)])
def test_matches_torchvision(reduction, alpha, gamma):
    x, t = make(seed=int(gamma * 10))
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    a = O.sigmoid_focal_loss(xa, t, alpha, gamma, reduction)
    b = torchvision.ops.sigmoid_focal_loss(xb, t, alpha, gamma, reduction)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    g = torch.rand_like(a)
    a.backward(g)
    b.backward(g)
    torch.testing.assert_close(xa.grad, xb.grad, atol=1e-5, rtol=1e-5)


def test_soft_targets_float64_reference():
    x, t = make(seed=4, dtype=torch.float64, soft=True)
    torch.testing.assert_close(O.sigmoid_focal_loss(x, t, 0.25, 2.0, "none"), focal_ref(x, t, 0.25, 2.0, "none"))


@pytest.mark.parametrize("shape", ["element", "row", "row1"])
def test_weights(shape):
    x, t = make(seed=2, dtype=torch.float64)
    g = torch.Generator().manual_seed(1)
    w = {"element": torch.rand(x.shape, generator=g), "row": torch.rand(x.shape[0], generator=g),
         "row1": torch.rand(x.shape[0], 1, generator=g)}[shape].double()
    full = w if shape == "element" else w.reshape(-1, 1).expand_as(x)
    for reduction in ("none", "sum", "mean"):
        torch.testing.assert_close(O.sigmoid_focal_loss(x, t, 0.25, 2.0, reduction, weight=w),
                                   focal_ref(x, t, 0.25, 2.0, reduction, weight=full))
    xg = x.clone().requires_grad_()
    assert torch.autograd.gradcheck(lambda v: O.sigmoid_focal_loss(v, t, 0.25, 2.0, "mean", weight=w), (xg,))


@pytest.mark.parametrize("gamma", [0.0, 1.0, 1.5, 2.0])
def test_gradcheck(gamma):
    x, t = make(n=6, c=3, seed=3, dtype=torch.float64, soft=True)
    x.requires_grad_()
    assert torch.autograd.gradcheck(lambda v: O.sigmoid_focal_loss(v, t, 0.25, gamma, "none"), (x,))
    assert torch.autograd.gradcheck(lambda v: O.sigmoid_focal_loss(v, t, 0.25, gamma, "sum"), (x,))


def test_empty_input():
    x = torch.zeros(0, 80, requires_grad=True)
    assert O.sigmoid_focal_loss(x, torch.zeros(0, 80), reduction="none").shape == (0, 80)
    loss = O.sigmoid_focal_loss(x, torch.zeros(0, 80), reduction="sum")
    loss.backward()
    assert loss.item() == 0.0 and x.grad.shape == (0, 80)


def test_sum_identical_with_one_and_two_threads():
    x, t = make(n=20000, c=20, seed=6)
    before = torch.get_num_threads()
    out = []
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            out.append(O.sigmoid_focal_loss(x, t, reduction="sum"))
    finally:
        torch.set_num_threads(before)
    assert torch.equal(out[0], out[1])


def test_bad_arguments():
    x, t = make()
    with pytest.raises(ValueError, match="reduction"):
        O.sigmoid_focal_loss(x, t, reduction="avg")
    with pytest.raises(ValueError, match="targets shape"):
        O.sigmoid_focal_loss(x, t[:, :3])
    with pytest.raises(ValueError, match="does not broadcast"):
        O.sigmoid_focal_loss(x, t, weight=torch.ones(5))


def test_opcheck():
    x, t = make(n=4, c=3, dtype=torch.float64)
    torch.library.opcheck(torch.ops.det.sigmoid_focal_loss.default, (x, t, None, 0.25, 2.0, 0, True))
