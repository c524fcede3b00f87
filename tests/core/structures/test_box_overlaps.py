"""`box_overlaps`, det's one IoU: torch and numpy inputs, the metrics' conventions as parameters."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torchvision.ops import box_iou, generalized_box_iou

from det.core.structures import box_overlaps


def _boxes(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 80, (n, 2))
    return np.concatenate([xy, xy + rng.uniform(1, 40, (n, 2))], 1)


def test_kinds_and_dtypes_follow_the_first_argument():
    a, b = _boxes(5, 0), _boxes(7, 1)
    ref = box_iou(torch.from_numpy(a), torch.from_numpy(b)).numpy()
    out = box_overlaps(a, b)
    assert isinstance(out, np.ndarray) and out.dtype == np.float64 and out.shape == (5, 7)
    np.testing.assert_allclose(out, ref, rtol=1e-12)
    f32 = box_overlaps(a, b, dtype=np.float32)
    assert f32.dtype == np.float32
    t = box_overlaps(torch.from_numpy(a).float(), torch.from_numpy(b).float())
    assert isinstance(t, torch.Tensor) and t.dtype == torch.float32
    np.testing.assert_allclose(t.numpy(), ref, rtol=1e-5, atol=1e-6)
    assert box_overlaps(np.zeros((0, 4)), b).shape == (0, 7)
    assert box_overlaps(a[:, :4].astype(np.int64), b).dtype == np.float64


def test_iof_giou_aligned_and_xywh():
    a, b = _boxes(6, 2), _boxes(6, 3)
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    np.testing.assert_allclose(box_overlaps(a, b, "giou"), generalized_box_iou(ta, tb).numpy(), rtol=1e-10)
    np.testing.assert_allclose(box_overlaps(a, b, aligned=True), np.diag(box_iou(ta, tb).numpy()), rtol=1e-12)
    xywh = np.concatenate([a[:, :2], a[:, 2:] - a[:, :2]], 1)
    np.testing.assert_allclose(box_overlaps(xywh, xywh, fmt="xywh"), box_overlaps(a, a), rtol=1e-12)
    # intersection over the first box's area, by hand
    iof = box_overlaps(np.array([[0.0, 0, 10, 10]]), np.array([[5.0, 0, 30, 10]]), "iof")
    assert iof[0, 0] == pytest.approx(0.5)


def test_voc_legacy_offset_and_differentiable_loss_path():
    # VOC devkit's pixel convention: widths are x2 - x1 + 1
    out = box_overlaps(np.array([[0.0, 0, 9, 9]]), np.array([[5.0, 5, 14, 14]]), offset=1.0)
    assert out[0, 0] == pytest.approx(25 / (100 + 100 - 25))
    p = torch.tensor([[0.0, 0, 10, 10]], requires_grad=True)
    g = box_overlaps(p, torch.tensor([[5.0, 0, 15, 10]]), "giou", aligned=True)
    g.sum().backward()
    assert g.shape == (1,) and p.grad is not None and g.item() == pytest.approx(50 / 150)


def test_the_mot_and_tracker_conventions_for_degenerate_boxes():
    from det.core.evaluation.mot import box_iou_xywh
    from det.core.tracking.assignment import iou_matrix

    good = np.array([[0.0, 0, 10, 10]])
    assert box_iou_xywh(good, np.array([[0.0, 0, 0, 5]]))[0, 0] == 0.0  # a zero-area box overlaps nothing
    inverted = np.array([[10.0, 10, 0, 0]])  # x2 < x1: empty for the trackers, not a negative area
    assert iou_matrix(inverted, good)[0, 0] == 0.0 and iou_matrix(good, good)[0, 0] == 1.0
