"""weighted_boxes_fusion against a reference written from the algorithm, hand values, batch API."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from ops_refs import wbf_ref

import det.ops as O

CONF_TYPES = ["avg", "max", "box_and_model_avg", "absent_model_aware_avg"]


def predictions(n_models, n_boxes, seed, n_labels=3):
    rng = np.random.default_rng(seed)
    base = rng.random((n_boxes, 4)) * 0.8
    boxes, scores, labels = [], [], []
    for _ in range(n_models):
        b = base + rng.normal(0, 0.02, base.shape)
        b[:, 2:] = b[:, :2] + np.abs(b[:, 2:] - b[:, :2]) * 0.4 + 0.02
        b[::17] = np.clip(b[::17] * 1.5 - 0.2, -0.3, 1.4)   # outside [0, 1]: clipped
        b[::23, 2] = b[::23, 0]                              # zero area: dropped
        b[::29] = b[::29][:, [2, 3, 0, 1]]                   # reversed corners: swapped
        boxes.append(b.astype(np.float32))
        scores.append(rng.random(n_boxes).astype(np.float32))
        labels.append(rng.integers(0, n_labels, n_boxes))
    return boxes, scores, labels


@pytest.mark.parametrize("conf_type", CONF_TYPES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_reference(conf_type, seed):
    boxes, scores, labels = predictions(3, 60, seed)
    weights = [2.0, 1.0, 0.5] if seed == 1 else None
    kwargs = dict(weights=weights, iou_thr=0.55, skip_box_thr=0.05 * seed, conf_type=conf_type)
    b, s, lab = O.weighted_boxes_fusion(boxes, scores, labels, **kwargs)
    rb, rs, rl = wbf_ref(boxes, scores, labels, **kwargs)
    assert b.shape == (len(rb), 4) and b.dtype == np.float64 and lab.dtype == np.int64
    np.testing.assert_allclose(b, np.array(rb).reshape(-1, 4), atol=1e-5)
    np.testing.assert_allclose(s, rs, atol=1e-5)
    np.testing.assert_array_equal(lab, rl)


def test_allows_overflow():
    boxes, scores, labels = predictions(2, 30, 5)
    boxes = boxes + [boxes[0]]  # model 2 duplicates model 0 -> clusters of 3 boxes from 2 models
    scores, labels = scores + [scores[0]], labels + [labels[0]]
    for overflow in (False, True):
        _, s, _ = O.weighted_boxes_fusion(boxes, scores, labels, weights=[1, 1, 1], allows_overflow=overflow)
        _, rs, _ = wbf_ref(boxes, scores, labels, weights=[1, 1, 1], allows_overflow=overflow)
        np.testing.assert_allclose(s, rs, atol=1e-6)


def test_hand_computed():
    boxes = [np.array([[0.1, 0.1, 0.5, 0.5]]), np.array([[0.1, 0.1, 0.5, 0.7]]), np.zeros((0, 4))]
    scores = [np.array([0.9]), np.array([0.3]), np.zeros(0)]
    labels = [np.array([1]), np.array([1]), np.zeros(0)]
    # IoU = 0.16 / 0.24 = 0.667 > 0.55 -> one cluster; y2 = (0.9 * 0.5 + 0.3 * 0.7) / 1.2 = 0.55
    b, s, lab = O.weighted_boxes_fusion(boxes, scores, labels, conf_type="avg")
    np.testing.assert_allclose(b, [[0.1, 0.1, 0.5, 0.55]], atol=1e-6)
    np.testing.assert_allclose(s, [(0.9 + 0.3) / 2 * 2 / 3], atol=1e-6)   # mean score * min(3, 2) / 3
    assert lab.tolist() == [1]
    _, s, _ = O.weighted_boxes_fusion(boxes, scores, labels, conf_type="max")
    np.testing.assert_allclose(s, [0.9], atol=1e-6)
    _, s, _ = O.weighted_boxes_fusion(boxes, scores, labels, conf_type="absent_model_aware_avg")
    np.testing.assert_allclose(s, [0.6 * 2 / (2 + 1)], atol=1e-6)
    _, s, _ = O.weighted_boxes_fusion(boxes, scores, labels, iou_thr=0.7)
    np.testing.assert_allclose(sorted(s), [0.3 / 3, 0.9 / 3], atol=1e-6)


def test_empty_and_tensor_inputs():
    b, s, lab = O.weighted_boxes_fusion([np.zeros((0, 4))], [np.zeros(0)], [np.zeros(0)])
    assert b.shape == (0, 4) and s.shape == (0,) and lab.shape == (0,)
    boxes, scores, labels = predictions(2, 10, 3)
    tb, ts, tl = O.weighted_boxes_fusion([torch.from_numpy(x) for x in boxes], [torch.from_numpy(x) for x in scores],
                                         [torch.from_numpy(x) for x in labels])
    nb, ns, nl = O.weighted_boxes_fusion(boxes, scores, labels)
    assert isinstance(tb, torch.Tensor)
    np.testing.assert_array_equal(tb.numpy(), nb)
    np.testing.assert_array_equal(tl.numpy(), nl)


def test_batch_equals_per_image_and_threads():
    rows = []
    per_image = {}
    for image in (7, 3, 11):
        boxes, scores, labels = predictions(3, 25, image)
        per_image[image] = O.weighted_boxes_fusion(boxes, scores, labels, weights=[1, 2, 1], conf_type="box_and_model_avg")
        for m in range(3):
            rows.append((boxes[m], scores[m], labels[m], np.full(25, image), np.full(25, m)))
    rng = np.random.default_rng(0)
    perm = rng.permutation(len(rows))  # rows of different images/models interleaved
    cat = [np.concatenate([rows[i][k] for i in perm]) for k in range(5)]
    before = torch.get_num_threads()
    results = []
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            results.append(O.weighted_boxes_fusion_batch(*[torch.as_tensor(c) for c in cat], weights=[1, 2, 1],
                                                         conf_type="box_and_model_avg"))
    finally:
        torch.set_num_threads(before)
    for a, b in zip(*results):
        assert torch.equal(a, b)
    b, s, lab, img = results[0]
    assert img.tolist() == sorted(img.tolist())
    for image, (eb, es, el) in per_image.items():
        sel = img == image
        np.testing.assert_array_equal(b[sel].numpy(), eb)
        np.testing.assert_array_equal(s[sel].numpy(), es)
        np.testing.assert_array_equal(lab[sel].numpy(), el)


def test_bad_arguments():
    boxes, scores, labels = predictions(2, 5, 0)
    with pytest.raises(ValueError, match="conf_type"):
        O.weighted_boxes_fusion(boxes, scores, labels, conf_type="median")
    with pytest.raises(ValueError, match="weights"):
        O.weighted_boxes_fusion(boxes, scores, labels, weights=[1.0])
    with pytest.raises(ValueError, match="differ in length"):
        O.weighted_boxes_fusion(boxes, scores[:1], labels)
