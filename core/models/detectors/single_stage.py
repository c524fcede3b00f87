"""Single-stage detectors: data preprocessor -> backbone -> neck -> dense head."""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from det.core.config.build import at_path, build
from det.core.models.backbones import BACKBONES
from det.core.models.data_preprocessor import PREPROCESSORS
from det.core.models.dense_heads import HEADS
from det.core.models.necks import NECKS
from det.core.structures import DetSample, Instances


class SingleStageDetector(nn.Module):
    """The detector interface of docs/architecture.md:

    - `loss(inputs, samples)` -> dict of losses (keys starting with 'loss' are summed);
    - `predict(inputs, samples)` -> one `Instances` per image in original-image coordinates;
    - `forward(x)` -> raw head outputs for an already normalised float batch (flops, benchmarks).
    `inputs` are the loader's uint8 BGR batches; `data_preprocessor` runs inside loss/predict.
    """

    def __init__(self, backbone: dict, bbox_head: dict, neck: dict | None = None,
                 data_preprocessor: dict | None = None, train_cfg: dict | None = None,
                 test_cfg: dict | None = None) -> None:
        super().__init__()
        self.data_preprocessor = build(data_preprocessor or {"type": "DetDataPreprocessor"}, PREPROCESSORS,
                                       "data_preprocessor")
        self.backbone = build(backbone, BACKBONES, "backbone")
        self.neck = build(neck, NECKS, "neck")
        self.bbox_head = build(bbox_head, HEADS, "bbox_head")
        with at_path("train_cfg"):
            self.bbox_head.set_train_cfg(train_cfg)
        with at_path("test_cfg"):
            self.bbox_head.set_test_cfg(test_cfg)
        self.num_classes = self.bbox_head.num_classes

    def extract_feat(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        feats = self.backbone(x)
        return self.neck(feats) if self.neck is not None else feats

    def forward(self, x: torch.Tensor) -> tuple:
        return self.bbox_head(self.extract_feat(x))

    def loss(self, inputs: torch.Tensor, samples: Sequence[DetSample]) -> dict[str, torch.Tensor]:
        x, samples = self.data_preprocessor(inputs, samples)
        return self.bbox_head.loss(self.extract_feat(x), samples)

    def predict(self, inputs: torch.Tensor, samples: Sequence[DetSample], rescale: bool = True) -> list[Instances]:
        x, samples = self.data_preprocessor(inputs, samples)
        return self.bbox_head.predict(self.extract_feat(x), samples, rescale=rescale)


class RetinaNet(SingleStageDetector):
    """RetinaNet (ResNet + FPN + RetinaHead)."""


class FCOS(SingleStageDetector):
    """FCOS (ResNet + FPN + FCOSHead)."""


class RTMDet(SingleStageDetector):
    """RTMDet (CSPNeXt + CSPNeXtPAFPN + RTMDetSepBNHead)."""
