"""TimmBackbone: a tiny timm model (timm's own `test_resnet`) feeds an FPN whose in_channels come
from the backbone, and a RetinaNet built on it trains one iteration."""
from __future__ import annotations

import copy

import pytest
import torch

from det.core.errors import ConfigError
from det.core.models import build_detector
from tests.core.models.test_detectors import RETINA, _batch

timm = pytest.importorskip("timm", reason="timm is the optional extra det[timm] (installed by make test)")


def _retina_on_timm() -> dict:
    cfg = copy.deepcopy(RETINA)
    cfg["backbone"] = {"type": "TimmBackbone", "model_name": "test_resnet", "out_indices": [1, 2, 3]}
    cfg["neck"] = {k: v for k, v in cfg["neck"].items() if k != "in_channels"}
    return cfg


def test_timm_features_feed_fpn_and_train_one_iteration():
    torch.manual_seed(0)
    model = build_detector(_retina_on_timm())
    reference = timm.create_model("test_resnet", features_only=True, out_indices=(1, 2, 3))
    assert model.backbone.out_feature_channels == reference.feature_info.channels() == [32, 48, 192]
    assert [c.conv.in_channels for c in model.neck.lateral_convs] == [32, 48, 192]
    model.train()
    inputs, samples = _batch()
    first = next(model.backbone.timm_model.parameters())
    before = first.detach().clone()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    losses = model.loss(inputs, samples)
    total = sum(v for k, v in losses.items() if k.startswith("loss"))
    total.backward()
    assert torch.isfinite(total) and first.grad.abs().sum() > 0  # gradients reach the timm stem
    optimizer.step()
    assert not torch.equal(before, first)


def test_unknown_timm_model_names_the_closest():
    cfg = _retina_on_timm()
    cfg["backbone"]["model_name"] = "test_resnett"
    with pytest.raises(ConfigError, match="model_name: unknown timm model 'test_resnett'; did you mean 'test_resnet'"):
        build_detector(cfg)
