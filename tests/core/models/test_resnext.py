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


def test_matches_torchvision_resnext50_32x4d():
    """torchvision's resnext50_32x4d is the same network (same names, stride on the 3x3 conv)."""
    import torchvision

    torch.manual_seed(0)
    reference = torchvision.models.resnext50_32x4d().eval()
    for m in reference.modules():
        if isinstance(m, torch.nn.BatchNorm2d):  # non-trivial statistics (zero-init residual BN too)
            m.weight.data.uniform_(0.5, 1.5)
            m.running_var.uniform_(0.5, 1.5)
    model = ResNeXt(depth=50, groups=32, base_width=4, out_indices=(3,)).eval()
    result = model.load_state_dict({k: v for k, v in reference.state_dict().items() if not k.startswith("fc.")})
    assert not result.missing_keys and not result.unexpected_keys
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        expected = torch.nn.Sequential(*list(reference.children())[:-2])(x)
        (mine,) = model(x)
    torch.testing.assert_close(mine, expected, atol=1e-5, rtol=1e-5)


def test_x101_preset_backbone_has_torchvisions_parameter_count():
    import torchvision

    model = build_detector(load_preset("zoo/faster-rcnn_x101-64x4d_fpn")["model"])
    reference = torchvision.models.resnext101_64x4d()
    expected = sum(p.numel() for n, p in reference.named_parameters() if not n.startswith("fc."))
    assert sum(p.numel() for p in model.backbone.parameters()) == expected
