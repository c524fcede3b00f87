"""Thresholded assignment vs exhaustive search; IoU vs torchvision."""
import itertools

import numpy as np
import torch
from torchvision.ops import box_iou

from det.core.tracking.assignment import iou_matrix, linear_assignment


def test_matches_exhaustive_optimum_on_random_problems():
    rng = np.random.default_rng(0)
    for _ in range(60):
        n, m = rng.integers(1, 5), rng.integers(1, 5)
        cost = rng.random((n, m))
        limit = 0.6
        matches, ur, uc = linear_assignment(cost, limit)
        assert all(cost[r, c] <= limit for r, c in matches)
        assert sorted(list(matches[:, 0]) + list(ur)) == list(range(n))
        assert sorted(list(matches[:, 1]) + list(uc)) == list(range(m))
        # objective: the most valid pairs, then the least total cost among such matchings
        best = min(_all_valid_matchings(cost, limit), key=lambda p: (-len(p), sum(cost[r, c] for r, c in p)))
        assert len(matches) == len(best)
        assert np.isclose(sum(cost[r, c] for r, c in matches), sum(cost[r, c] for r, c in best))


def _all_valid_matchings(cost, limit):
    n, m = cost.shape
    for perm in itertools.permutations(list(range(m)) + [None] * n, n):
        yield [(r, c) for r, c in enumerate(perm) if c is not None and cost[r, c] <= limit]


def test_empty_inputs_and_nothing_valid():
    m, ur, uc = linear_assignment(np.zeros((0, 3)), 0.5)
    assert m.shape == (0, 2) and len(ur) == 0 and list(uc) == [0, 1, 2]
    m, ur, uc = linear_assignment(np.ones((2, 2)), 0.5)
    assert m.shape == (0, 2) and list(ur) == [0, 1]


def test_valid_mask_excludes_pairs():
    cost = np.array([[0.1, 0.2], [0.3, 0.1]])
    m, _, _ = linear_assignment(cost, 1.0, valid=np.array([[False, True], [True, True]]))
    assert sorted(map(tuple, m)) == [(0, 1), (1, 0)]


def test_iou_matches_torchvision():
    rng = np.random.default_rng(1)
    a = rng.uniform(0, 100, (7, 2))
    a = np.concatenate([a, a + rng.uniform(1, 50, (7, 2))], 1)
    b = rng.uniform(0, 100, (5, 2))
    b = np.concatenate([b, b + rng.uniform(1, 50, (5, 2))], 1)
    np.testing.assert_allclose(iou_matrix(a, b), box_iou(torch.tensor(a), torch.tensor(b)).numpy(), atol=1e-12)
    assert iou_matrix(a, np.zeros((0, 4))).shape == (7, 0)
