"""Single-stage detectors: data preprocessor -> backbone -> neck -> dense head."""
from __future__ import annotations

from collections.abc import Sequence

import torch

from det.core.config.build import at_path, build
from det.core.models.dense_heads import HEADS
from det.core.models.detectors.base import DetectorTrunk
from det.core.structures import DetSample, Instances


class SingleStageDetector(DetectorTrunk):
    """The detector interface of docs/architecture.md:

    - `loss(inputs, samples)` -> dict of losses (keys starting with 'loss' are summed);
    - `predict(inputs, samples)` -> one `Instances` per image in original-image coordinates;
    - `forward(x)` -> raw head outputs for an already normalised float batch (flops, benchmarks).
    `inputs` are the loader's uint8 BGR batches; `data_preprocessor` runs inside loss/predict.
    """

    def __init__(self, backbone: dict, bbox_head: dict, neck: dict | None = None,
                 data_preprocessor: dict | None = None, train_cfg: dict | None = None,
                 test_cfg: dict | None = None) -> None:
        super().__init__(backbone, neck, data_preprocessor)
        self.bbox_head = build(bbox_head, HEADS, "bbox_head")
        with at_path("train_cfg"):
            self.bbox_head.set_train_cfg(train_cfg)
        with at_path("test_cfg"):
            self.bbox_head.set_test_cfg(test_cfg)
        self.num_classes = self.bbox_head.num_classes

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


class YOLOX(SingleStageDetector):
    """YOLOX (CSPDarknet + YOLOXPAFPN + YOLOXHead); `switch_stage()` turns on the L1 loss of
    YOLOX's last epochs (called by the trainer when it switches to `data.train.switch_pipeline`)."""

    def switch_stage(self) -> None:
        self.bbox_head.use_l1 = True
