"""Parity with MMDetection without the peer: a reduced Panoptic FPN (MMDetection 3.3's
panoptic-fpn_r50_fpn_1x_coco narrowed to a ResNet-18 of base width 8 and a 16-channel FPN,
random weights), its checkpoint and MMDetection's outputs on one image stored in
tests/fixtures/panoptic_fpn_parity.pt by `benchmarks/parity/mmdet_panoptic_fpn.py
--write-fixture`. The checkpoint goes through `det convert mmdet-weights --strict`; det's semantic
logits, RPN outputs, detections (masks too), fused panoptic map and one-batch losses must match."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from det.core.fileio import load_checkpoint
from det.core.models import build_detector
from det.core.structures import DetSample, Instances

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "panoptic_fpn_parity.pt"
REPO = FIXTURE.parents[2]


def _sample(h: int, w: int, gt: dict | None = None) -> DetSample:
    s = DetSample(ori_shape=(h, w), img_shape=(h, w), pad_shape=(h, w), batch_input_shape=(h, w))
    if gt is not None:
        s.gt = Instances(bboxes=gt["bboxes"].clone(), labels=gt["labels"].clone(), masks=gt["masks"].clone())
        s.gt_sem_seg = gt["sem_seg"].clone()
    return s


def _mmdet_encoding(pred, num_classes: int) -> torch.Tensor:
    """things `label + k * 1000` (k-th thing segment), stuff `label`, VOID `num_classes`."""
    out = np.full(pred.seg_map.shape, num_classes, np.int64)
    k = 0
    for seg in pred.segments:
        region = pred.seg_map == int(seg["id"])
        k += bool(seg["isthing"])
        out[region] = int(seg["label"]) + (k * 1000 if seg["isthing"] else 0)
    return torch.as_tensor(out)


def test_converted_mmdetection_panoptic_fpn_gives_mmdetections_outputs(tmp_path, det_inproc):
    fx = torch.load(FIXTURE, weights_only=True)
    src = tmp_path / "mmdet.pth"
    torch.save({"state_dict": fx["state_dict"]}, src)
    sets = [x for o in fx["overrides"] for x in ("--set", o)]
    r = det_inproc("convert", "mmdet-weights", src, tmp_path / "det.pt", "--preset", REPO / fx["preset"], "--strict",
                   *sets, "--json")
    assert r.returncode == 0, r.stderr
    ckpt = load_checkpoint(tmp_path / "det.pt")
    model = build_detector(ckpt["preset"]["model"]).eval()
    model.load_state_dict(ckpt["state_dict"], strict=True)
    img, gt, ref = fx["img"], fx["gt"], fx["reference"]
    h, w = img.shape[-2:]
    with torch.no_grad():
        x, _ = model.data_preprocessor(img, [_sample(h, w)])
        feats = model.extract_feat(x)
        assert (model.semantic_head(feats) - ref["sem_logits"]).abs().max() <= 1e-4
        rpn = model.rpn_head(feats)
        for group, key in zip(rpn, ("cls", "bbox")):
            assert (torch.cat([t.flatten() for t in group]) - ref["rpn"][key]).abs().max() <= 1e-4
        pred = model.predict(img, [_sample(h, w)])[0]
    inst = pred.instances
    assert len(inst) == len(ref["scores"]) > 0
    mo, do = torch.argsort(-ref["scores"], stable=True), torch.argsort(-inst.scores, stable=True)
    assert torch.equal(inst.labels[do], ref["labels"][mo])
    assert (inst.bboxes[do] - ref["bboxes"][mo]).abs().max() <= 1e-3
    assert (inst.scores[do] - ref["scores"][mo]).abs().max() <= 1e-5
    ref_masks = torch.as_tensor(np.unpackbits(ref["masks"].numpy(), axis=-1)[..., :w].astype(bool))
    assert (torch.as_tensor(inst.masks)[do] == ref_masks[mo]).float().mean() >= 0.999
    ours = _mmdet_encoding(pred, model.num_classes)
    assert (ours >= 1000).any() and ((ours >= 80) & (ours < 133)).any()  # things and stuff both present
    assert torch.equal(ours, ref["panoptic"].long())
    model.train()
    torch.manual_seed(7)
    losses = model.loss(img, [_sample(h, w, gt)])
    assert set(losses) == {k for k in ref if k.startswith("loss")}
    for key, value in losses.items():
        assert float(value.detach()) == pytest.approx(ref[key], abs=1e-4), key
