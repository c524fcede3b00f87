"""Parity with MMDetection without the peer: reduced-width YOLOX-tiny and RTMDet-Ins-tiny built by
MMDetection 3.3 (random weights), their checkpoints and MMDetection's outputs on one image stored
in tests/fixtures by `benchmarks/parity/mmdet_realtime.py --write-fixture`. The checkpoint goes
through `det convert mmdet-weights --strict`; det's raw outputs, detections (masks too) and
losses must match MMDetection's."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from det.core.fileio import load_checkpoint
from det.core.models import build_detector
from det.core.structures import DetSample, Instances

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
REPO = FIXTURES.parents[1]


def _sample(h: int, w: int, gt: dict | None = None, masks: bool = False) -> DetSample:
    s = DetSample(ori_shape=(h, w), img_shape=(h, w), pad_shape=(h, w), batch_input_shape=(h, w))
    if gt is not None:
        s.gt = Instances(bboxes=gt["bboxes"].clone(), labels=gt["labels"].clone(),
                         masks=gt["masks"].clone() if masks else None)
    return s


def _converted(name: str, tmp_path: Path, det_inproc) -> tuple[torch.nn.Module, dict]:
    fx = torch.load(FIXTURES / f"{name}_parity.pt", weights_only=True)
    src = tmp_path / "mmdet.pth"
    torch.save({"state_dict": fx["state_dict"], "meta": {"dataset_meta": {"classes": ["a", "b", "c", "d"]}}}, src)
    sets = [x for o in fx["overrides"] for x in ("--set", o)]
    r = det_inproc("convert", "mmdet-weights", src, tmp_path / "det.pt", "--preset", REPO / fx["preset"], "--strict",
                   *sets, "--json")
    assert r.returncode == 0, r.stderr
    ckpt = load_checkpoint(tmp_path / "det.pt")
    model = build_detector(ckpt["preset"]["model"]).eval()
    model.load_state_dict(ckpt["state_dict"], strict=True)
    return model, fx


def _match(ref: dict, pred: Instances) -> torch.Tensor:
    """det's detection closest to each reference one (same class; ranks tie on random weights)."""
    cost = (ref["bboxes"][:, None] - pred.bboxes[None]).abs().amax(-1)
    cost = cost + 1e6 * (ref["labels"][:, None] != pred.labels[None]) + 1e3 * (ref["scores"][:, None] - pred.scores[None]).abs()
    return cost.argmin(1)


@pytest.mark.parametrize("name", ["yolox", "rtmdet_ins"])
def test_converted_mmdetection_weights_give_mmdetections_outputs(name, tmp_path, det_inproc):
    model, fx = _converted(name, tmp_path, det_inproc)
    img, gt, ref = fx["img"], fx["gt"], fx["reference"]
    h, w = img.shape[-2:]
    ins = name == "rtmdet_ins"
    with torch.no_grad():
        x, _ = model.data_preprocessor(img, [_sample(h, w)])
        raw = model(x)
        for got, want in zip(raw, ref["raw"]):
            flat = torch.cat([t.flatten() for t in got]) if isinstance(got, (list, tuple)) else got.flatten()
            assert (flat - want).abs().max() <= 1e-4
        pred = model.predict(img, [_sample(h, w)])[0]
        assert len(pred) == len(ref["scores"]) > 0
        idx = _match(ref, pred)
        assert len(idx.unique()) == len(idx)
        assert torch.equal(pred.labels[idx], ref["labels"])
        assert (pred.bboxes[idx] - ref["bboxes"]).abs().max() <= 1e-3
        assert (pred.scores[idx] - ref["scores"]).abs().max() <= 1e-5
        if ins:
            agree = (pred.masks[idx] == ref["masks"]).float().mean()
            assert pred.masks.shape[-2:] == (h, w) and agree >= 0.999
        feats = model.extract_feat(x)
        for l1 in ((None,) if ins else (False, True)):
            if l1 is not None:
                model.bbox_head.use_l1 = l1
            losses = model.bbox_head.loss(feats, [_sample(h, w, gt, ins)])
            suffix = "_l1" if l1 else ""
            assert {k + suffix for k in losses} == {k for k in ref if k.startswith("loss") and k.endswith(suffix)
                                                     and (l1 or not k.endswith("_l1"))}
            for key, value in losses.items():
                assert float(value) == pytest.approx(ref[key + suffix], abs=1e-4), key
