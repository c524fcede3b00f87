"""Anchor optimisation: shape IoU by hand, k-means vs a plain reference k-means, DE, --set line."""
from __future__ import annotations

import numpy as np
import pytest

from det.core.analysis import anchors as A
from det.core.errors import DetError


def test_shape_iou_and_keep_ratio_by_hand():
    iou = A.shape_iou(np.array([[10.0, 20.0], [4.0, 4.0]]), np.array([[20.0, 10.0], [4.0, 4.0]]))
    # 10x20 vs 20x10: inter 10*10=100, union 200+200-100=300
    assert iou[0, 0] == pytest.approx(1 / 3) and iou[1, 1] == 1.0 and iou[0, 1] == pytest.approx(16 / 200)
    f = A.keep_ratio_factor(np.array([1333.0, 480.0, 1000.0]), np.array([800.0, 640.0, 200.0]), (1333, 800))
    assert f.tolist() == pytest.approx([1.0, min(1333 / 640, 800 / 480), min(1333 / 1000, 800 / 200)])
    gt = {"images": [{"id": 1, "width": 1280, "height": 640}],
          "categories": [{"id": 1, "name": "a"}],
          "annotations": [{"image_id": 1, "category_id": 1, "bbox": [0, 0, 128, 64]},
                          {"image_id": 1, "category_id": 1, "bbox": [0, 0, 50, 50], "iscrowd": 1},
                          {"image_id": 1, "category_id": 1, "bbox": [0, 0, 0.5, 50]}]}
    assert A.shapes_from_coco(gt, (640, 640)).tolist() == [[64.0, 32.0]]


def reference_kmeans(boxes: np.ndarray, k: int, seed: int, iters: int = 300) -> float:
    """Plain Lloyd k-means with 1 - IoU, centres drawn uniformly from the boxes (MMDetection's scheme)."""
    rng = np.random.default_rng(seed)
    centers = boxes[rng.integers(0, len(boxes), k)].copy()
    assign = None
    for _ in range(iters):
        iou = A.shape_iou(boxes, centers)
        new = iou.argmax(1)
        if assign is not None and (new == assign).all():
            break
        assign = new
        for j in range(k):
            if (assign == j).any():
                centers[j] = boxes[assign == j].mean(0)
    return float(A.shape_iou(boxes, centers).max(1).mean())


def random_shapes(seed: int, n: int = 3000) -> np.ndarray:
    rng = np.random.default_rng(seed)
    size = np.exp(rng.normal(3.5, 1.0, n))
    ratio = np.exp(rng.normal(0, 0.6, n))
    return np.column_stack([size * np.sqrt(ratio), size / np.sqrt(ratio)])


@pytest.mark.parametrize("seed", range(3))
def test_kmeans_at_least_reference(seed):
    boxes = random_shapes(seed)
    ours = A.kmeans_anchors(boxes, 9, seed=seed, progress=False)
    assert ours["mean_iou"] >= reference_kmeans(boxes, 9, seed) - 1e-9
    assert ours["mean_iou"] == pytest.approx(A.mean_iou(boxes, ours["anchors"]))
    areas = ours["anchors"].prod(1)
    assert (np.diff(areas) >= 0).all()  # sorted by area


def test_kmeans_recovers_clusters():
    rng = np.random.default_rng(0)
    centres = np.array([[10.0, 12.0], [60.0, 30.0], [200.0, 220.0]])
    boxes = np.concatenate([c * rng.uniform(0.98, 1.02, (200, 2)) for c in centres])
    res = A.kmeans_anchors(boxes, 3, seed=1, progress=False)
    np.testing.assert_allclose(res["anchors"], centres, rtol=0.02)
    assert res["mean_iou"] > 0.96


def test_differential_evolution_not_below_kmeans():
    boxes = random_shapes(5, 600)
    km = A.kmeans_anchors(boxes, 4, iters=300, seed=0, restarts=3, progress=False)
    de = A.de_anchors(boxes, (640, 640), 4, iters=15, seed=0)
    assert de["mean_iou"] >= km["mean_iou"] - 1e-12
    assert de["anchors"].shape == (4, 2) and (de["anchors"] <= 640).all()


def test_optimize_result_and_set_line():
    boxes = random_shapes(1, 500)
    res = A.optimize_anchors(boxes, "kmeans", (640, 640), 9, 100, 0)
    assert len(res["anchors"]) == 9 and all(isinstance(v, int) for a in res["anchors"] for v in a)
    assert res["mean_iou"] == pytest.approx(A.mean_iou(boxes, np.array(res["anchors"], float)))
    anchors = np.array([[i, i] for i in range(1, 10)], float)
    assert A.set_line(anchors) == ("--set model.bbox_head.anchor_generator.base_sizes="
                                   "[[[7,7],[8,8],[9,9]],[[4,4],[5,5],[6,6]],[[1,1],[2,2],[3,3]]]")
    template = [[[1, 1]], [[50, 50], [60, 60]], [[9, 9]]]  # middle level has the largest anchors
    line = A.set_line(anchors[:4], "model.head.anchor_generator.base_sizes", template)
    assert line == "--set model.head.anchor_generator.base_sizes=[[[1,1]],[[3,3],[4,4]],[[2,2]]]"
    with pytest.raises(DetError, match="did you mean 'kmeans'"):
        A.optimize_anchors(boxes, "k-means", (640, 640))
