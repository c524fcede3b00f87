"""FLOP counting: a hand-computed tiny network, and the reference models' published sizes."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from det.core.analysis.flops import count_model, count_preset


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)  # 16x16 out
        self.blocks = nn.ModuleList([nn.Conv2d(8, 8, 1, bias=False), nn.Conv2d(8, 4, 1)])
        self.fc = nn.Linear(4, 10)

    def forward(self, x):
        x = torch.relu(self.stem(x))
        for b in self.blocks:
            x = b(x)
        return self.fc(x.mean((2, 3)))


def test_tiny_network_by_hand():
    res = count_model(Tiny(), (16, 16), depth=2)
    stem = 8 * 3 * 3 * 3 * 16 * 16
    blocks = 8 * 8 * 16 * 16 + 4 * 8 * 16 * 16
    fc = 4 * 10
    assert res["macs"] == stem + blocks + fc and res["flops"] == 2 * res["macs"]
    assert res["params"] == sum(p.numel() for p in Tiny().parameters())
    rows = {r["module"]: r for r in res["modules"]}
    assert rows["stem"]["macs"] == stem and rows["blocks"]["macs"] == blocks  # ModuleList: sum of children
    assert rows["blocks.1"]["macs"] == 4 * 8 * 16 * 16 and rows["fc"]["params"] == 50
    assert "relu" in res["uncounted_ops"] and "mean" in res["uncounted_ops"]
    assert "view" not in res["uncounted_ops"]
    assert max(r["depth"] for r in count_model(Tiny(), (16, 16), depth=1)["modules"]) == 1


@pytest.mark.parametrize("preset,shape,macs,params", [
    ("presets/_base_/models/rtmdet_tiny_coco.yaml", (640, 640), 8.1e9, 4.8e6),
    ("presets/_base_/models/retinanet_r50_fpn.yaml", (800, 800), 151.5e9, None),
])
def test_reference_models_within_5_percent(preset, shape, macs, params):
    res = count_preset(preset, shape=shape, depth=1)
    assert res["macs"] == pytest.approx(macs, rel=0.05)
    if params:
        assert res["params"] == pytest.approx(params, rel=0.05)
    assert {r["module"] for r in res["modules"]} >= {"(model)", "backbone", "neck", "bbox_head"}
