"""ResNeXt: MMDetection's key layout and outputs (fixture written by
benchmarks/parity/mmdet_backbones.py --write-fixture from MMDetection's own module), widths, presets."""
from __future__ import annotations

from pathlib import Path

import torch

from det.core.config import load_preset
from det.core.models import build_detector
from det.core.models.backbones import ResNeXt

FIXTURE = Path(__file__).parent / "fixtures" / "resnext_mmdet.pt"


def test_outputs_match_mmdetection_resnext():
    fixture = torch.load(FIXTURE, weights_only=True)
    model = ResNeXt(out_indices=(0, 1, 2, 3), **fixture["kwargs"]).eval()
    model.load_state_dict(fixture["state_dict"], strict=True)  # identical names and shapes
    with torch.no_grad():
        outputs = model(fixture["input"])
    for mine, theirs in zip(outputs, fixture["outputs"], strict=True):
        torch.testing.assert_close(mine, theirs, atol=1e-5, rtol=0)


def test_grouped_widths_follow_the_32x4d_rule():
    model = ResNeXt(depth=50, groups=32, base_width=4)
    # stage 1: planes 64 -> width floor(64 * 4 / 64) * 32 = 128; stage 4: 512 -> 1024
    assert model.layer1[0].conv2.weight.shape == (128, 4, 3, 3) and model.layer1[0].conv2.groups == 32
    assert model.layer4[0].conv2.weight.shape == (1024, 32, 3, 3)
    assert model.out_channels == [256, 512, 1024, 2048]


def test_x101_preset_builds_with_mmdetections_parameter_count():
    model = build_detector(load_preset("zoo/faster-rcnn_x101-64x4d_fpn")["model"])
    # MMDetection's faster-rcnn_x101-64x4d_fpn: 99.38 M parameters (counted from its own module)
    assert abs(sum(p.numel() for p in model.parameters()) / 1e6 - 99.38) < 0.01
