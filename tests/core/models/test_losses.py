"""Losses against written-out references (torchvision where it has the same function)."""
import torch
import torch.nn.functional as F
from torchvision.ops import generalized_box_iou, box_iou, sigmoid_focal_loss

from det.core.models.losses import (
    CrossEntropyLoss,
    FocalLoss,
    GIoULoss,
    IoULoss,
    L1Loss,
    QualityFocalLoss,
    SmoothL1Loss,
)


def _boxes(n, seed):
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g) * 50
    wh = torch.rand(n, 2, generator=g) * 30 + 1
    return torch.cat([xy, xy + wh], 1)


def test_giou_loss_matches_torchvision_and_weights():
    a, b = _boxes(7, 0), _boxes(7, 1)
    ref = 1 - torch.diag(generalized_box_iou(a, b))
    torch.testing.assert_close(GIoULoss(reduction="none")(a, b), ref, rtol=1e-5, atol=1e-6)
    w = torch.rand(7)
    torch.testing.assert_close(GIoULoss(loss_weight=2.0)(a, b, weight=w, avg_factor=3.0),
                               2.0 * (ref * w).sum() / 3.0, rtol=1e-5, atol=1e-6)


def test_iou_loss_modes():
    a, b = _boxes(5, 2), _boxes(5, 3)
    iou = torch.diag(box_iou(a, b)).clamp(min=1e-6)
    torch.testing.assert_close(IoULoss(reduction="none")(a, b), -iou.log(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(IoULoss(mode="linear", reduction="sum")(a, b), (1 - iou).sum(), rtol=1e-5, atol=1e-6)


def test_quality_focal_loss_written_out():
    torch.manual_seed(0)
    pred = torch.randn(6, 4)
    labels = torch.tensor([0, 4, 2, 4, 3, 1])  # 4 = background
    scores = torch.tensor([0.9, 0.0, 0.3, 0.0, 0.7, 0.5])
    expected = torch.zeros(6)
    for i in range(6):
        for c in range(4):
            p = torch.sigmoid(pred[i, c])
            t = scores[i] if c == labels[i] else torch.tensor(0.0)
            bce = -(t * torch.log(p) + (1 - t) * torch.log(1 - p))
            expected[i] += bce * (t - p).abs() ** 2
    loss = QualityFocalLoss(reduction="none")(pred, (labels, scores))
    torch.testing.assert_close(loss, expected, rtol=1e-5, atol=1e-6)
    w = torch.rand(6)
    torch.testing.assert_close(QualityFocalLoss()(pred, (labels, scores), weight=w, avg_factor=2.0),
                               (expected * w).sum() / 2.0, rtol=1e-5, atol=1e-6)


def test_quality_focal_loss_gradient_flows():
    pred = torch.randn(3, 2, requires_grad=True)
    QualityFocalLoss()(pred, (torch.tensor([0, 2, 1]), torch.tensor([0.5, 0.0, 0.8]))).backward()
    assert pred.grad is not None and torch.isfinite(pred.grad).all()


def test_focal_loss_matches_torchvision_with_background_label():
    torch.manual_seed(1)
    pred = torch.randn(8, 3)
    labels = torch.tensor([0, 1, 2, 3, 3, 1, 0, 3])  # 3 = background
    onehot = F.one_hot(labels, 4)[:, :3].float()
    ref = sigmoid_focal_loss(pred, onehot, alpha=0.25, gamma=2.0, reduction="none")
    w = torch.tensor([1.0, 1, 0, 1, 1, 1, 1, 0])
    got = FocalLoss()(pred, labels, weight=w, avg_factor=4.0)
    torch.testing.assert_close(got, (ref * w[:, None]).sum() / 4.0, rtol=1e-5, atol=1e-6)


def test_l1_smooth_l1_and_cross_entropy():
    a, b = torch.randn(4, 4), torch.randn(4, 4)
    torch.testing.assert_close(L1Loss()(a, b, avg_factor=2.0), (a - b).abs().sum() / 2.0, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(SmoothL1Loss(beta=0.5)(a, b), F.smooth_l1_loss(a, b, beta=0.5))
    logits, target = torch.randn(5), torch.rand(5)
    torch.testing.assert_close(CrossEntropyLoss(use_sigmoid=True)(logits, target, avg_factor=5.0),
                               F.binary_cross_entropy_with_logits(logits, target), rtol=1e-5, atol=1e-6)
    x, y = torch.randn(5, 3), torch.tensor([0, 2, 1, 1, 0])
    torch.testing.assert_close(CrossEntropyLoss()(x, y), F.cross_entropy(x, y))
