"""The RPN parses `nms` like every other head: soft-NMS there changes the proposals (decayed
scores from det.ops.batched_soft_nms per level), and an unknown NMS type is an error."""
from __future__ import annotations

import pytest
import torch

from det.core.errors import ConfigError
from det.core.models.dense_heads import RPNHead
from det.core.structures import DetSample
from det.ops import batched_soft_nms


def _head(nms: dict) -> RPNHead:
    torch.manual_seed(0)
    return RPNHead(in_channels=4, feat_channels=4, anchor_generator={"type": "AnchorGenerator", "scales": [2],
                   "ratios": [0.5, 1.0, 2.0], "strides": [8, 16]},
                   test_cfg={"nms_pre": 200, "max_per_img": 1000, "nms": nms, "min_bbox_size": 0})


def test_soft_nms_in_the_rpn_changes_proposals():
    feats = [torch.randn(1, 4, 8, 8), torch.randn(1, 4, 4, 4)]
    sample = DetSample(img_shape=(64, 64), batch_input_shape=(64, 64), ori_shape=(64, 64))
    hard = _head({"type": "nms", "iou_threshold": 0.5})
    soft = _head({"type": "soft_nms", "iou_threshold": 0.5, "min_score": 0.05, "method": "gaussian", "sigma": 0.5})
    cls, reg = hard(feats)
    p_hard = hard.predict_by_feat(cls, reg, samples=[sample])[0]
    p_soft = soft.predict_by_feat(cls, reg, samples=[sample])[0]
    assert len(p_soft) > len(p_hard)  # overlapping proposals survive with lowered scores
    assert not torch.equal(p_soft.scores[: len(p_hard)], p_hard.scores)
    # reference: the same candidates through det.ops.batched_soft_nms directly
    levels = torch.cat([torch.full((3 * 8 * 8,), 0), torch.full((3 * 4 * 4,), 1)])
    anchors = soft.prior_generator.grid_priors([(8, 8), (4, 4)], device=cls[0].device)
    scores = torch.cat([c[0].permute(1, 2, 0).reshape(-1) for c in cls]).sigmoid()
    deltas = torch.cat([r[0].permute(1, 2, 0).reshape(-1, 4) for r in reg])
    boxes = soft.bbox_coder.decode(torch.cat(anchors), deltas, max_shape=(64, 64))
    wh = boxes[:, 2:] - boxes[:, :2]
    ok = (wh > 0).all(1)
    keep, new_scores = batched_soft_nms(boxes[ok], scores[ok], levels[ok], 0.5, sigma=0.5, min_score=0.05,
                                        method="gaussian")
    torch.testing.assert_close(p_soft.scores, new_scores)
    torch.testing.assert_close(p_soft.bboxes, boxes[ok][keep])


def test_unknown_nms_type_is_rejected():
    with pytest.raises(ConfigError, match="nms.type: expected nms or soft_nms"):
        _head({"type": "softnms"})
    with pytest.raises(ConfigError, match="nms.sigma: unknown key"):
        _head({"type": "nms", "sigma": 0.5})
