"""SOLOv2 parity with MMDetection without the peer: a reduced solov2_r50_fpn_1x_coco (ResNet-18 at
1/8 width, 32-channel head) built by MMDetection 3.3 with random weights, its checkpoint and
MMDetection's outputs on one image stored in tests/fixtures by
`benchmarks/parity/mmdet_solov2.py --write-fixture`. The checkpoint goes through `det convert
mmdet-weights --strict`; det's raw outputs, detections (scores, labels, masks at image size, boxes
against the boxes enclosing MMDetection's masks) and both losses must match MMDetection's."""
from __future__ import annotations

import pytest
import torch

from det.core.structures import Instances
from tests.core.models.test_realtime_parity import _converted, _sample


def _match(ref: dict, pred: Instances) -> torch.Tensor:
    """det's detection of the same class closest in mask and score to each reference one
    (random-weight masks often cover the whole image, so boxes alone tie)."""
    differ = (ref["masks"].flatten(1).float()[:, None] - pred.masks.flatten(1).float()[None]).abs().mean(-1)
    cost = differ + 1e6 * (ref["labels"][:, None] != pred.labels[None])
    return (cost + 1e3 * (ref["scores"][:, None] - pred.scores[None]).abs()).argmin(1)


def test_converted_solov2_weights_give_mmdetections_outputs(tmp_path, det_inproc):
    model, fx = _converted("solov2", tmp_path, det_inproc)
    img, gt, ref = fx["img"], fx["gt"], fx["reference"]
    h, w = img.shape[-2:]
    with torch.no_grad():
        x, _ = model.data_preprocessor(img, [_sample(h, w)])
        for got, want in zip(model(x), ref["raw"]):
            flat = torch.cat([t.flatten() for t in got]) if isinstance(got, (list, tuple)) else got.flatten()
            assert (flat - want).abs().max() <= 1e-4
        pred = model.predict(img, [_sample(h, w)])[0]
        assert len(pred) == len(ref["scores"]) > 1
        idx = _match(ref, pred)
        assert len(idx.unique()) == len(idx)
        assert torch.equal(pred.labels[idx], ref["labels"])
        assert (pred.scores[idx] - ref["scores"]).abs().max() <= 1e-5
        assert (pred.bboxes[idx] - ref["bboxes"]).abs().max() <= 1e-3
        assert pred.masks.shape[-2:] == (h, w) and (pred.masks[idx] == ref["masks"]).float().mean() >= 0.999
        losses = model.mask_head.loss(model.extract_feat(x), [_sample(h, w, gt, True)])
    assert set(losses) == {"loss_mask", "loss_cls"} == {k for k in ref if k.startswith("loss")}
    for key, value in losses.items():
        assert float(value) == pytest.approx(ref[key], abs=1e-4), key
