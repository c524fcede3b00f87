"""Model bases say what they require: DenseHead is abstract, AnchorHead owns anchor targets
(RetinaNet, RPN), standard and cascade RoI heads are siblings; the registry adds to tables."""
from __future__ import annotations

import pytest
import torch

from det.core.errors import ConfigError
from det.core.models.dense_heads import HEADS, RPNHead, RetinaHead
from det.core.models.dense_heads.anchor_head import AnchorHead
from det.core.models.dense_heads.base import DenseHead
from det.core.models.roi_heads import ROI_HEADS
from det.core.models.roi_heads.standard_roi_head import BaseRoIHead
from det.core.registry import register, table


def test_dense_head_without_its_methods_cannot_be_built():
    class Half(DenseHead):
        def forward(self, feats):
            return ([f.mean(1, keepdim=True) for f in feats],)

    with pytest.raises(TypeError, match="decode_level"):
        Half()


def test_anchor_heads_and_roi_head_siblings():
    assert issubclass(RetinaHead, AnchorHead) and issubclass(RPNHead, AnchorHead)
    std, cascade = ROI_HEADS["StandardRoIHead"], ROI_HEADS["CascadeRoIHead"]
    assert issubclass(std, BaseRoIHead) and issubclass(cascade, BaseRoIHead)
    assert not issubclass(cascade, std) and not issubclass(std, cascade)


def test_register_adds_to_det_tables_and_refuses_clashes():
    @register("head", "TestOnlyRetina")
    class TestOnlyRetina(RetinaHead):
        pass

    try:
        assert HEADS["TestOnlyRetina"] is TestOnlyRetina and table("head") is HEADS
        with pytest.raises(ConfigError, match="register\\('head', 'RetinaHead'\\): the name is taken"):
            register("head", "RetinaHead")(TestOnlyRetina)
        with pytest.raises(ConfigError, match="unknown kind 'backbones'; did you mean 'backbone'"):
            register("backbones")
        head = HEADS["TestOnlyRetina"](num_classes=2, in_channels=8, feat_channels=8, stacked_convs=1)
        assert len(head([torch.zeros(1, 8, 8, 8)] * 5)[0]) == 5
    finally:
        HEADS.pop("TestOnlyRetina", None)
