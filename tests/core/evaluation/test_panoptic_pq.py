"""PQ / SQ / RQ: handmade label maps with known TP/FP/FN and IoUs, a perfect-prediction
property, and an independent per-segment reference implementation on random maps."""
from __future__ import annotations

import math

import numpy as np
import pytest

from det.core.errors import DataError
from det.core.evaluation.panoptic import pq_image, pq_summary

CATS = [{"id": 1, "name": "cat", "isthing": 1}, {"id": 2, "name": "dog", "isthing": 1},
        {"id": 7, "name": "sky", "isthing": 0}, {"id": 8, "name": "road", "isthing": 0}]


def seg(cat, crowd=0):
    return {"category_id": cat, "iscrowd": crowd}


def score(gt, gt_segs, pred, pred_segs):
    stats = pq_image(np.array(gt), gt_segs, np.array(pred), pred_segs)
    return stats, pq_summary(stats, CATS)


def test_partial_overlap_iou_is_intersection_over_union():
    # gt cat: 10 px (row 0 all), pred cat: 8 of them -> IoU 0.8; the rest of the map is sky, matched exactly
    gt = [[1] * 10, [7] * 10]
    pred = [[1] * 8 + [7] * 2, [7] * 10]
    stats, res = score(gt, {1: seg(1), 7: seg(7)}, pred, {1: seg(1), 7: seg(7)})
    assert stats[1] == [pytest.approx(0.8), 1, 0, 0]
    assert stats[7] == [pytest.approx(10 / 12), 1, 0, 0]
    assert res["PQ_th"] == pytest.approx(0.8) and res["SQ_th"] == pytest.approx(0.8) and res["RQ_th"] == 1
    assert res["PQ"] == pytest.approx((0.8 + 10 / 12) / 2)


def test_iou_of_exactly_one_half_does_not_match():
    gt = [[1, 1, 1, 1, 0, 0, 0, 0]]
    pred = [[0, 0, 5, 5, 5, 5, 0, 0]]  # inter 2, union 4 + 4 - 2 - void-overlap 2 = 4 -> 0.5
    stats, res = score(gt, {1: seg(1)}, pred, {5: seg(1)})
    assert stats[1] == [0.0, 0, 1, 1]
    assert res["PQ"] == 0 and res["RQ"] == 0 and res["SQ"] == 0


def test_prediction_pixels_on_void_leave_the_union():
    # pred covers the 4-px gt plus 4 VOID px: IoU 4 / (8 + 4 - 4 - 4) = 1 (without the rule: 0.5, no match)
    gt = [[0, 0, 0, 0, 1, 1, 1, 1]]
    pred = [[3, 3, 3, 3, 3, 3, 3, 3]]
    stats, res = score(gt, {1: seg(1)}, pred, {3: seg(1)})
    assert stats[1] == [1.0, 1, 0, 0] and res["PQ"] == 1.0


def test_crowd_is_not_a_false_negative_and_covers_predictions_of_its_class():
    gt = [[9, 9, 9, 9, 9, 9, 7, 7]]
    # a cat prediction lying on the cat crowd: ignored; a dog prediction on the same crowd: a false positive
    pred = [[4, 4, 4, 6, 6, 6, 7, 7]]
    stats, res = score(gt, {9: seg(1, crowd=1), 7: seg(7)}, pred, {4: seg(1), 6: seg(2), 7: seg(7)})
    assert 1 not in stats  # no TP, FP or FN for cat: left out of the averages
    assert stats[2] == [0.0, 0, 1, 0]
    assert stats[7] == [1.0, 1, 0, 0]
    assert res["num_things"] == 1 and res["PQ_th"] == 0 and res["PQ_st"] == 1 and res["PQ"] == 0.5
    assert set(res["classwise"]) == {"dog", "sky"}


def test_crowd_never_matches_even_when_identical():
    stats, _ = score([[9, 9]], {9: seg(1, crowd=1)}, [[4, 4]], {4: seg(1)})
    assert stats == {}


def test_wrong_class_is_one_fp_and_one_fn():
    stats, res = score([[1, 1, 7, 7]], {1: seg(1), 7: seg(7)}, [[2, 2, 7, 7]], {2: seg(2), 7: seg(7)})
    assert stats[1] == [0.0, 0, 0, 1] and stats[2] == [0.0, 0, 1, 0] and stats[7] == [1.0, 1, 0, 0]
    assert res["PQ_th"] == 0 and res["num_things"] == 2 and res["PQ"] == pytest.approx(1 / 3)


def test_unmatched_prediction_more_than_half_void_is_not_a_false_positive():
    gt = [[0, 0, 0, 7, 7, 7, 7, 7, 7, 7]]
    ignored = [[5, 5, 5, 5, 7, 7, 7, 7, 7, 7]]  # 3 of 4 px on VOID
    stats, _ = score(gt, {7: seg(7)}, ignored, {5: seg(1), 7: seg(7)})
    assert 1 not in stats
    half = [[5, 5, 5, 5, 7, 7, 7, 7, 7, 7]]  # 2 of 4 px on VOID
    gt2 = [[0, 0, 7, 7, 7, 7, 7, 7, 7, 7]]
    stats, _ = score(gt2, {7: seg(7)}, half, {5: seg(1), 7: seg(7)})
    assert stats[1] == [0.0, 0, 1, 0]  # 2 / 4 = 0.5 is not > 0.5: a false positive


def test_things_stuff_and_class_averages_by_hand():
    # cat: 2 gt, one matched at IoU 0.75, one missed; a dog false positive; road matched at 1; sky missed
    gt = np.array([[1, 1, 1, 1, 2, 2, 8, 8],
                   [7, 7, 7, 7, 7, 7, 8, 8]])
    pred = np.array([[1, 1, 1, 0, 0, 0, 8, 8],
                     [4, 4, 4, 4, 8, 8, 8, 8]])
    gt_segs = {1: seg(1), 2: seg(1), 7: seg(7), 8: seg(8)}
    pred_segs = {1: seg(1), 4: seg(2), 8: seg(8)}
    stats, res = score(gt, gt_segs, pred, pred_segs)
    # pred 8 (road, 6 px) vs gt road (4 px): inter 4, union 6 -> 0.667 > 0.5: TP; gt sky: FN
    assert stats[1] == [pytest.approx(0.75), 1, 0, 1]
    assert stats[2] == [0.0, 0, 1, 0]
    assert stats[8] == [pytest.approx(4 / 6), 1, 0, 0]
    assert stats[7] == [0.0, 0, 0, 1]
    cat = res["classwise"]["cat"]
    assert cat["PQ"] == pytest.approx(0.75 / 1.5) and cat["SQ"] == pytest.approx(0.75) and cat["RQ"] == pytest.approx(1 / 1.5)
    assert res["PQ_th"] == pytest.approx(0.25) and res["RQ_th"] == pytest.approx(1 / 3)
    assert res["PQ_st"] == pytest.approx((4 / 6) / 2) and res["SQ_st"] == pytest.approx((4 / 6) / 2)
    assert res["PQ"] == pytest.approx((0.5 + 0 + 4 / 6 + 0) / 4)


def test_group_without_categories_is_nan():
    _, res = score([[1, 1]], {1: seg(1)}, [[1, 1]], {1: seg(1)})
    assert res["PQ"] == 1 and math.isnan(res["PQ_st"]) and res["num_stuff"] == 0


def test_maps_and_segments_must_agree():
    with pytest.raises(DataError, match="segment id 3 is in the PNG but not in segments_info"):
        pq_image(np.array([[1]]), {1: seg(1)}, np.array([[3]]), {})
    with pytest.raises(DataError, match="segment id 5 of segments_info is not in the PNG"):
        pq_image(np.array([[1]]), {1: seg(1)}, np.array([[1]]), {1: seg(1), 5: seg(2)})


# -- random maps ---------------------------------------------------------------------------------

def random_case(r: np.random.Generator, h: int = 12, w: int = 14):
    """Blocky random gt/pred maps with void, crowd, things and stuff."""
    def blocks(n):
        small = r.integers(0, n, (h // 2, w // 2))
        return np.repeat(np.repeat(small, 2, 0), 2, 1)

    gt = blocks(7)
    gt_segs = {int(i): seg(int(r.choice([1, 2, 7, 8])), crowd=int(r.random() < 0.2)) for i in np.unique(gt) if i}
    pred = np.where(r.random((h, w)) < 0.75, gt, r.integers(0, 9, (h, w)))
    pred_segs = {int(i): seg(gt_segs[int(i)]["category_id"] if int(i) in gt_segs and r.random() < 0.8
                             else int(r.choice([1, 2, 7, 8]))) for i in np.unique(pred) if i}
    return gt, gt_segs, pred, pred_segs


def reference_stats(gt, gt_segs, pred, pred_segs):
    """panopticapi's rules written out per segment pair with boolean masks (no pair encoding)."""
    stats = {}

    def add(cat, k, v):
        stats.setdefault(cat, [0.0, 0, 0, 0])[k] += v

    void = gt == 0
    matched_g, matched_p = set(), set()
    for g, gs in gt_segs.items():
        for p, ps in pred_segs.items():
            if gs["iscrowd"] or gs["category_id"] != ps["category_id"]:
                continue
            gm, pm = gt == g, pred == p
            inter = np.sum(gm & pm)
            iou = inter / (np.sum(gm | pm) - np.sum(pm & void))
            if iou > 0.5:
                add(gs["category_id"], 0, iou)
                add(gs["category_id"], 1, 1)
                matched_g.add(g)
                matched_p.add(p)
    crowd = {gs["category_id"]: g for g, gs in gt_segs.items() if gs["iscrowd"]}
    for g, gs in gt_segs.items():
        if g not in matched_g and not gs["iscrowd"]:
            add(gs["category_id"], 3, 1)
    for p, ps in pred_segs.items():
        if p in matched_p:
            continue
        pm = pred == p
        cover = void | (gt == crowd[ps["category_id"]]) if ps["category_id"] in crowd else void
        if np.sum(pm & cover) / np.sum(pm) <= 0.5:
            add(ps["category_id"], 2, 1)
    return stats


@pytest.mark.parametrize("seed", range(25))
def test_matches_an_independent_reference_on_random_maps(seed):
    r = np.random.default_rng(seed)
    gt, gt_segs, pred, pred_segs = random_case(r)
    ours = pq_image(gt, gt_segs, pred, pred_segs)
    ref = reference_stats(gt, gt_segs, pred, pred_segs)
    assert set(ours) == set(ref)
    for cat in ref:
        assert ours[cat][0] == pytest.approx(ref[cat][0]) and ours[cat][1:] == ref[cat][1:]


@pytest.mark.parametrize("seed", range(10))
def test_a_perfect_prediction_scores_one(seed):
    r = np.random.default_rng(100 + seed)
    gt, gt_segs, _, _ = random_case(r)
    non_crowd = {g: s for g, s in gt_segs.items() if not s["iscrowd"]}
    pred = np.where(np.isin(gt, list(non_crowd)), gt, 0)
    # relabel ids: matching goes by pixels and classes, never by id
    pred = np.where(pred > 0, pred + 1000, 0)
    stats = pq_image(gt, gt_segs, pred, {g + 1000: {"category_id": s["category_id"]} for g, s in non_crowd.items()})
    res = pq_summary(stats, CATS)
    if non_crowd:
        assert res["PQ"] == 1.0 and res["SQ"] == 1.0 and res["RQ"] == 1.0
