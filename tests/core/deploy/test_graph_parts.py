"""The export graph's small pieces against plain PyTorch references."""
import pytest
import torch

from det.core.deploy.graph import candidate_scores, kth_largest


@pytest.mark.parametrize("n,k", [(1, 1), (10, 1), (10, 5), (10, 6), (10, 10), (32000, 30000), (5000, 300)])
def test_kth_largest_equals_sorted_reference(n, k):
    g = torch.Generator().manual_seed(n + k)
    flat = torch.randint(0, 50, (n,), generator=g).float() / 7  # many ties
    assert kth_largest(flat, k) == flat.sort(descending=True).values[k - 1]


def test_candidate_scores_keeps_exactly_the_best_above_threshold():
    g = torch.Generator().manual_seed(0)
    scores = torch.rand(400, 8, generator=g)
    out = candidate_scores(scores, 0.5, 100)
    kept = out > 0
    ref = torch.zeros(scores.numel(), dtype=torch.bool)
    ref[scores.flatten().topk(100).indices] = True
    ref &= scores.flatten() > 0.5
    assert torch.equal(kept.flatten(), ref)
    assert torch.equal(out[kept], scores[kept])
