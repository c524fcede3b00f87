"""Parity with MMDetection without the peer: a reduced-width Cascade Mask R-CNN (ResNet-18 at 1/8
width) built by MMDetection 3.3 from cascade-mask-rcnn_r50_fpn_1x_coco.py with random weights, its
checkpoint and MMDetection's outputs on one image stored in tests/fixtures by
`benchmarks/parity/mmdet_cascade_mask.py --write-fixture`. The checkpoint goes through
`det convert mmdet-weights --strict`; det's RPN outputs, detections (masks averaged over the three
stages) and every loss term of every stage (RoI sampling from the same torch seed) must match."""
from __future__ import annotations

import pytest
import torch

from tests.core.models.test_realtime_parity import _converted, _match, _sample


def test_converted_cascade_mask_rcnn_gives_mmdetections_outputs(tmp_path, det_inproc):
    model, fx = _converted("cascade_mask_rcnn", tmp_path, det_inproc)
    img, gt, ref = fx["img"], fx["gt"], fx["reference"]
    h, w = img.shape[-2:]
    with torch.no_grad():
        x, _ = model.data_preprocessor(img, [_sample(h, w)])
        rpn = model.rpn_head(model.extract_feat(x))
        for group, want in zip(rpn, ref["raw"]):
            assert (torch.cat([t.flatten() for t in group]) - want).abs().max() <= 1e-4
        pred = model.predict(img, [_sample(h, w)])[0]
        assert len(pred) == len(ref["scores"]) > 0
        idx = _match(ref, pred)
        assert len(idx.unique()) == len(idx)
        assert torch.equal(pred.labels[idx], ref["labels"])
        assert (pred.bboxes[idx] - ref["bboxes"]).abs().max() <= 1e-3
        assert (pred.scores[idx] - ref["scores"]).abs().max() <= 1e-5
        assert pred.masks.shape[-2:] == (h, w) and (pred.masks[idx] == ref["masks"]).float().mean() >= 0.999
        torch.manual_seed(fx["loss_seed"])
        losses = model.loss(img, [_sample(h, w, gt, True)])
    assert set(losses) == {k for k in ref if k.startswith("loss")}
    assert {f"loss_{k}_s{i}" for k in ("cls", "bbox", "mask") for i in range(3)} <= set(losses)
    for key, value in losses.items():
        assert float(value) == pytest.approx(ref[key], abs=1e-4), key
